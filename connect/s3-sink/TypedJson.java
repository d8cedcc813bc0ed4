package dataingestion.connect.s3;

import static java.time.format.DateTimeFormatter.ISO_LOCAL_DATE_TIME;
import static java.time.format.DateTimeFormatter.ISO_LOCAL_TIME;

import com.fasterxml.jackson.core.JsonGenerator;
import java.io.IOException;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalTime;
import java.time.ZoneOffset;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Map;
import org.apache.kafka.connect.data.Date;
import org.apache.kafka.connect.data.Decimal;
import org.apache.kafka.connect.data.Field;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.data.Time;
import org.apache.kafka.connect.data.Timestamp;
import org.apache.kafka.connect.errors.DataException;

/**
 * A typed record (from the Avro converter) as JSON whose values keep their types where JSON can
 * say them: decimals as exact JSON numbers (every digit of their scale, never through a double),
 * dates, times and timestamps as ISO-8601 text rather than counts of days or microseconds, bytes as
 * base64. Debezium's semantic types are known by their schema names; a timestamp without time zone
 * stays without one (no `Z`), as PostgreSQL had it.
 */
final class TypedJson {
  private TypedJson() {}
  // Seconds always written (LocalTime's own toString drops them at :00), fractions as long as needed.

  static void write(JsonGenerator out, Schema schema, Object value) throws IOException {
    write(out, schema, value, Map.of(), null);
  }

  /**
   * As write(out, schema, value), with the values a typed record could not hold written back:
   * {@code inHeaders} maps a field's path ({@code after.ratio}) to the JSON of the value the source
   * carried in a header instead (a numeric's {@code "NaN"}, an array its list cannot hold).
   */
  static void write(JsonGenerator out, Schema schema, Object value, Map<String, String> inHeaders, String path)
      throws IOException {
    if (path != null && inHeaders.containsKey(path)) {
      out.writeRawValue(inHeaders.get(path));
      return;
    }
    if (value == null) {
      out.writeNull();
      return;
    }
    String name = schema.name();
    if (name != null && writeNamed(out, name, schema, value)) {
      return;
    }
    switch (schema.type()) {
      case STRUCT -> {
        Struct struct = (Struct) value;
        out.writeStartObject();
        for (Field field : schema.fields()) {
          out.writeFieldName(field.name());
          if (inHeaders.isEmpty()) {
            write(out, field.schema(), struct.get(field));
          } else {
            write(out, field.schema(), struct.get(field), inHeaders, path == null ? field.name() : path + "." + field.name());
          }
        }
        out.writeEndObject();
      }
      case ARRAY -> {
        out.writeStartArray();
        for (Object element : (List<?>) value) {
          write(out, schema.valueSchema(), element);
        }
        out.writeEndArray();
      }
      case MAP -> writeMap(out, schema, (Map<?, ?>) value);
      case INT8, INT16, INT32, INT64 -> out.writeNumber(((Number) value).longValue());
      case FLOAT32 -> out.writeNumber((Float) value);
      case FLOAT64 -> out.writeNumber((Double) value);
      case BOOLEAN -> out.writeBoolean((Boolean) value);
      case STRING -> out.writeString((String) value);
      case BYTES -> out.writeBinary(bytes(value));
    }
  }

  /** Writes a value of a named (logical or Debezium) type; false if the name is not one of those. */
  private static boolean writeNamed(JsonGenerator out, String name, Schema schema, Object value) throws IOException {
    switch (name) {
      case Decimal.LOGICAL_NAME -> out.writeNumber(plain((BigDecimal) value));
      case "io.debezium.data.VariableScaleDecimal" -> {
        Struct struct = (Struct) value;
        out.writeNumber(plain(new BigDecimal(new BigInteger(bytes(struct.get("value"))), struct.getInt32("scale"))));
      }
      case Date.LOGICAL_NAME, Time.LOGICAL_NAME, Timestamp.LOGICAL_NAME -> {
        Instant instant = ((java.util.Date) value).toInstant();
        out.writeString(switch (name) {
          case Date.LOGICAL_NAME -> LocalDate.ofInstant(instant, ZoneOffset.UTC).toString();
          case Time.LOGICAL_NAME -> ISO_LOCAL_TIME.format(LocalTime.ofInstant(instant, ZoneOffset.UTC));
          default -> instant.toString();
        });
      }
      case "io.debezium.time.Date" -> out.writeString(day(((Number) value).intValue()));
      case "io.debezium.time.Time" -> out.writeString(timeOfDay((Number) value, ChronoUnit.MILLIS));
      case "io.debezium.time.MicroTime" -> out.writeString(timeOfDay((Number) value, ChronoUnit.MICROS));
      case "io.debezium.time.NanoTime" -> out.writeString(timeOfDay((Number) value, ChronoUnit.NANOS));
      case "io.debezium.time.Timestamp" -> out.writeString(wallClock((Number) value, ChronoUnit.MILLIS));
      case "io.debezium.time.MicroTimestamp" -> out.writeString(wallClock((Number) value, ChronoUnit.MICROS));
      case "io.debezium.time.NanoTimestamp" -> out.writeString(wallClock((Number) value, ChronoUnit.NANOS));
      default -> {
        return false;
      }
    }
    return true;
  }

  private static void writeMap(JsonGenerator out, Schema schema, Map<?, ?> map) throws IOException {
    if (schema.keySchema().type() == Schema.Type.STRING) {
      out.writeStartObject();
      for (Map.Entry<?, ?> entry : map.entrySet()) {
        out.writeFieldName((String) entry.getKey());
        write(out, schema.valueSchema(), entry.getValue());
      }
      out.writeEndObject();
      return;
    }
    out.writeStartArray(); // keys that are not text: [key, value] pairs, as Kafka's JsonConverter writes them
    for (Map.Entry<?, ?> entry : map.entrySet()) {
      out.writeStartArray();
      write(out, schema.keySchema(), entry.getKey());
      write(out, schema.valueSchema(), entry.getValue());
      out.writeEndArray();
    }
    out.writeEndArray();
  }

  /** The decimal's digits as they are, never in exponent notation, which some readers take for a double. */
  private static String plain(BigDecimal decimal) {
    return decimal.toPlainString();
  }

  private static byte[] bytes(Object value) {
    if (value instanceof byte[] array) {
      return array;
    }
    if (value instanceof ByteBuffer buffer) {
      byte[] copy = new byte[buffer.remaining()];
      buffer.duplicate().get(copy);
      return copy;
    }
    throw new DataException("expected bytes, got " + value.getClass().getName());
  }

  /** PostgreSQL's 24:00:00 (the end of a day, which LocalTime cannot hold) stays 24:00:00. */
  private static String timeOfDay(Number amount, ChronoUnit unit) {
    if (amount.longValue() == ChronoUnit.DAYS.getDuration().dividedBy(unit.getDuration())) {
      return "24:00:00";
    }
    return ISO_LOCAL_TIME.format(LocalTime.MIDNIGHT.plus(amount.longValue(), unit));
  }

  /** A date's ±infinity (the largest and smallest count of days, as PostgreSQL keeps them) as PostgreSQL writes it. */
  private static String day(int count) {
    if (count == Integer.MAX_VALUE || count == Integer.MIN_VALUE) {
      return count > 0 ? "infinity" : "-infinity";
    }
    return LocalDate.ofEpochDay(count).toString();
  }

  /** A timestamp's ±infinity (Debezium's largest and smallest count) as PostgreSQL writes it. */
  private static String wallClock(Number amount, ChronoUnit unit) {
    long count = amount.longValue();
    if (count == Long.MAX_VALUE || count == Long.MIN_VALUE) {
      return count > 0 ? "infinity" : "-infinity";
    }
    return ISO_LOCAL_DATE_TIME.format(Instant.EPOCH.plus(count, unit).atOffset(ZoneOffset.UTC));
  }
}
