package dataingestion.connect.iceberg;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.common.config.ConfigDef.Importance;
import org.apache.kafka.common.config.ConfigDef.Type;
import org.apache.kafka.connect.connector.ConnectRecord;
import org.apache.kafka.connect.data.Field;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.SchemaBuilder;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.data.Decimal;
import org.apache.kafka.connect.errors.DataException;
import org.apache.kafka.connect.header.Header;
import org.apache.kafka.connect.sink.SinkRecord;
import org.apache.kafka.connect.transforms.Transformation;

/**
 * Turns a Debezium change event into a changelog row: the row after the change (a delete's row
 * before it) and a struct {@code _cdc} with the operation, the commit time, the LSN, when and where
 * the record was appended to Kafka, the source table and the Iceberg table it belongs in, and the
 * values its columns' types cannot hold, which the source carried in headers ({@code nonfinite}: a
 * decimal's NaN or ±Infinity; {@code arrays}: an array no list of its column's type holds, as JSON).
 *
 * <p>Values Iceberg's sink would misread are rewritten so that it reads them exactly: it takes a
 * number in a timestamp or time column for milliseconds, so Debezium's micro- and nanosecond
 * timestamps and times become ISO-8601 text (schema names {@link #TIMESTAMP}, {@link #TIME}), and a
 * numeric without a declared scale becomes its exact decimal text. {@link TypedIcebergSinkTask}
 * creates each table with the Iceberg types these names and Debezium's own stand for.
 *
 * <p>A tombstone (the null value Debezium sends after a delete, for compacted topics) is dropped: the
 * delete itself is already a row. A TRUNCATE is a row with op {@code t} and every column null, so
 * every column of a changelog table is optional.
 */
public final class ChangelogRow<R extends ConnectRecord<R>> implements Transformation<R> {
  public static final String DATABASE = "database";
  public static final String CDC = "_cdc";
  public static final String TIMESTAMP = "dataingestion.iceberg.Timestamp";
  public static final String TIME = "dataingestion.iceberg.Time";
  static final String ZONED_TIMESTAMP = "io.debezium.time.ZonedTimestamp";
  private static final String TRUNCATE = "t";
  /** The doc of a column that is NOT NULL in PostgreSQL: only a TRUNCATE's row leaves it null. */
  public static final String NOT_NULL = "NOT NULL in the source table: null only in a TRUNCATE's row (op t)";
  private static final String VARIABLE_SCALE_DECIMAL = "io.debezium.data.VariableScaleDecimal";
  private static final DateTimeFormatter LOCAL = DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSSSSS");
  private static final DateTimeFormatter CLOCK = DateTimeFormatter.ofPattern("HH:mm:ss.SSSSSS");
  private static final DateTimeFormatter UTC = DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSSSSS'Z'");

  private static final ConfigDef DEFINITION = new ConfigDef().define(DATABASE, Type.STRING,
      ConfigDef.NO_DEFAULT_VALUE, Importance.HIGH, "The catalog namespace (Glue database) of the tables.");

  static final Schema CDC_SCHEMA = SchemaBuilder.struct().name("dataingestion.iceberg.Change")
      .field("op", Schema.STRING_SCHEMA)
      .field("committed_at", SchemaBuilder.string().name(ZONED_TIMESTAMP).build())
      .field("appended_at", SchemaBuilder.string().name(ZONED_TIMESTAMP).optional().build())
      .field("lsn", Schema.OPTIONAL_INT64_SCHEMA)
      .field("topic", Schema.STRING_SCHEMA)
      .field("partition", Schema.INT32_SCHEMA)
      .field("offset", Schema.INT64_SCHEMA)
      .field("table", Schema.STRING_SCHEMA)
      .field("target", Schema.STRING_SCHEMA)
      // A numeric's NaN or ±Infinity in a decimal column, which holds null: column → value.
      .field("nonfinite", SchemaBuilder.map(Schema.STRING_SCHEMA, Schema.STRING_SCHEMA).optional().build())
      // An array no list of its column's type holds (more dimensions, a NaN), which holds null: column → JSON.
      .field("arrays", SchemaBuilder.map(Schema.STRING_SCHEMA, Schema.STRING_SCHEMA).optional().build())
      .build();
  // The headers the source's NonFiniteNumerics (Debezium's plugin directory, another class loader) adds.
  static final String NON_FINITE_HEADER = "dataingestion.nonfinite.";
  static final String ARRAY_HEADER = "dataingestion.array.";

  private String database;
  // Debezium sends one schema object per table version: each is rewritten once.
  private final Map<Schema, Schema> rows = new ConcurrentHashMap<>();

  @Override
  public void configure(Map<String, ?> configs) {
    database = (String) DEFINITION.parse(configs).get(DATABASE);
  }

  @Override
  public R apply(R record) {
    if (record.value() == null) {
      return null;
    }
    if (!(record.value() instanceof Struct envelope) || envelope.schema().field("op") == null) {
      throw new DataException("not a Debezium change event (a struct with op, before, after and source): "
          + record.topic() + ". The source must embed schemas (value.converter.schemas.enable=true).");
    }
    String op = envelope.getString("op");
    // A TRUNCATE has no row: its changelog row has the table's columns, all null, and op "t".
    Struct row = TRUNCATE.equals(op) ? new Struct(envelope.schema().field("after").schema())
        : envelope.getStruct("d".equals(op) ? "before" : "after");
    if (row == null) {
      throw new DataException(record.topic() + ": a '" + op + "' event without its row; is the table's"
          + " REPLICA IDENTITY FULL?");
    }
    Struct source = envelope.getStruct("source");
    String table = source.getString("schema") + "." + source.getString("table");

    Schema schema = rows.computeIfAbsent(row.schema(), ChangelogRow::rowSchema);
    Struct value = new Struct(schema);
    String image = "d".equals(op) ? "before" : "after";
    Map<String, String> nonFinite = inHeaders(record, NON_FINITE_HEADER, image);
    Map<String, String> arrays = inHeaders(record, ARRAY_HEADER, image);
    Map<String, String> inDecimals = null;
    for (Field field : row.schema().fields()) {
      String special = nonFinite.get(field.name());
      if (special != null) {
        if (field.schema().type() == Schema.Type.FLOAT64) {
          value.put(field.name(), Double.parseDouble(special));  // what Kafka's JSON made 0.0
        } else if (field.schema().type() == Schema.Type.FLOAT32) {
          value.put(field.name(), Float.parseFloat(special));
        } else if (Decimal.LOGICAL_NAME.equals(field.schema().name())) {
          inDecimals = inDecimals == null ? new HashMap<>() : inDecimals;
          inDecimals.put(field.name(), special);
        } else {
          value.put(field.name(), special);  // an unconstrained numeric: the table's column is text
        }
        continue;
      }
      try {
        value.put(field.name(), rewrite(field.schema(), TRUNCATE.equals(op) ? null : row.get(field)));
      } catch (java.time.DateTimeException outOfRange) {
        // PostgreSQL's time 24:00:00: Iceberg's time ends at 23:59:59.999999. Stop, naming it, rather
        // than write another time.
        throw new DataException(record.topic() + ": column " + field.name() + " holds " + row.get(field)
            + ", which Iceberg's time type cannot hold (PostgreSQL's 24:00:00?): " + outOfRange.getMessage()
            + ". Change the value, or archive with archiveFormat jsonl, which keeps it.", outOfRange);
      }
    }
    Struct cdc = new Struct(CDC_SCHEMA)
        .put("op", op)
        .put("committed_at", commitTime(source))
        .put("appended_at", record.timestamp() == null ? null
            : UTC.format(Instant.ofEpochMilli(record.timestamp()).atOffset(ZoneOffset.UTC)))
        .put("lsn", source.schema().field("lsn") != null ? source.getInt64("lsn") : null)
        .put("topic", record.topic())
        .put("partition", record.kafkaPartition() == null ? 0 : record.kafkaPartition())
        .put("offset", record instanceof SinkRecord sink ? sink.kafkaOffset() : -1L)
        .put("table", table)
        .put("target", (database + "." + source.getString("schema") + "_" + source.getString("table"))
            .toLowerCase(Locale.ROOT))
        .put("nonfinite", inDecimals)
        .put("arrays", arrays.isEmpty() ? null : arrays);
    value.put(CDC, cdc);
    return record.newRecord(record.topic(), record.kafkaPartition(), record.keySchema(), record.key(), schema, value,
        record.timestamp());
  }

  /** The values the source carried in one kind of header for one image (before, after), by column. */
  private static Map<String, String> inHeaders(ConnectRecord<?> record, String kind, String image) {
    Map<String, String> found = Map.of();
    String prefix = kind + image + ".";
    for (Header header : record.headers()) {
      if (header.key().startsWith(prefix)) {
        if (found.isEmpty()) {
          found = new HashMap<>();
        }
        // String.valueOf: a header converter other than the sink's StringConverter may have read "NaN" as a double.
        found.put(header.key().substring(prefix.length()), String.valueOf(header.value()));
      }
    }
    return found;
  }

  private static String commitTime(Struct source) {
    // Debezium 2.6+ gives microseconds (ts_us); milliseconds (ts_ms) otherwise.
    long micros = source.schema().field("ts_us") != null && source.get("ts_us") != null
        ? source.getInt64("ts_us") : source.getInt64("ts_ms") * 1000L;
    Instant instant = Instant.ofEpochSecond(Math.floorDiv(micros, 1_000_000L), Math.floorMod(micros, 1_000_000L) * 1000L);
    return UTC.format(instant.atOffset(ZoneOffset.UTC));
  }

  static Schema rowSchema(Schema row) {
    SchemaBuilder builder = SchemaBuilder.struct().name(row.name());
    for (Field field : row.fields()) {
      builder.field(field.name(), optional(fieldSchema(field.schema())));
    }
    return builder.field(CDC, CDC_SCHEMA).build();
  }

  /** Every column of a changelog table may be null: a TRUNCATE's row has none of its values. */
  private static Schema optional(Schema schema) {
    if (schema.isOptional()) {
      return schema;
    }
    SchemaBuilder builder = switch (schema.type()) {
      case STRUCT -> {
        SchemaBuilder struct = SchemaBuilder.struct();
        schema.fields().forEach(field -> struct.field(field.name(), field.schema()));
        yield struct;
      }
      case ARRAY -> SchemaBuilder.array(schema.valueSchema());
      case MAP -> SchemaBuilder.map(schema.keySchema(), schema.valueSchema());
      default -> SchemaBuilder.type(schema.type());
    };
    builder.name(schema.name()).version(schema.version()).doc(NOT_NULL);
    if (schema.parameters() != null) {
      builder.parameters(schema.parameters());
    }
    return builder.optional().build();
  }

  private static Schema fieldSchema(Schema schema) {
    if (schema.type() == Schema.Type.ARRAY) {  // each element as a column of its type
      SchemaBuilder list = SchemaBuilder.array(fieldSchema(schema.valueSchema()));
      return (schema.isOptional() ? list.optional() : list).build();
    }
    String name = schema.name() == null ? "" : schema.name();
    SchemaBuilder rewritten = switch (name) {
      case "io.debezium.time.Timestamp", "io.debezium.time.MicroTimestamp", "io.debezium.time.NanoTimestamp" ->
          SchemaBuilder.string().name(TIMESTAMP);
      case "io.debezium.time.Time", "io.debezium.time.MicroTime", "io.debezium.time.NanoTime" ->
          SchemaBuilder.string().name(TIME);
      case VARIABLE_SCALE_DECIMAL -> SchemaBuilder.string();
      default -> null;
    };
    if (rewritten == null) {
      return schema;
    }
    return (schema.isOptional() ? rewritten.optional() : rewritten).build();
  }

  private static Object rewrite(Schema schema, Object value) {
    if (value instanceof List<?> list && schema.type() == Schema.Type.ARRAY) {
      List<Object> rewritten = new ArrayList<>(list.size());
      for (Object element : list) {
        rewritten.add(rewrite(schema.valueSchema(), element));
      }
      return rewritten;
    }
    if (value == null || schema.name() == null) {
      return value;
    }
    return switch (schema.name()) {
      case "io.debezium.time.Timestamp" -> LOCAL.format(local((Long) value, 1_000L));
      case "io.debezium.time.MicroTimestamp" -> LOCAL.format(local((Long) value, 1L));
      case "io.debezium.time.NanoTimestamp" -> LOCAL.format(local(Math.floorDiv((Long) value, 1000L), 1L));
      case "io.debezium.time.Time" -> CLOCK.format(LocalTime.ofNanoOfDay(((Integer) value) * 1_000_000L));
      case "io.debezium.time.MicroTime" -> CLOCK.format(LocalTime.ofNanoOfDay((Long) value * 1000L));
      case "io.debezium.time.NanoTime" -> CLOCK.format(LocalTime.ofNanoOfDay((Long) value));
      // Debezium writes a timestamptz's ±infinity as the words; Iceberg's sink parses the text as a
      // timestamp and fails on them (stopping for every table): the type's largest and smallest
      // value, as for a timestamp without time zone.
      case ZONED_TIMESTAMP -> switch ((String) value) {
        case "infinity" -> UTC.format(local(Long.MAX_VALUE, 1L).atOffset(ZoneOffset.UTC));
        case "-infinity" -> UTC.format(local(Long.MIN_VALUE, 1L).atOffset(ZoneOffset.UTC));
        default -> value;
      };
      case VARIABLE_SCALE_DECIMAL -> {
        Struct decimal = (Struct) value;
        yield new BigDecimal(new BigInteger(decimal.getBytes("value")), decimal.getInt32("scale")).toPlainString();
      }
      default -> value;
    };
  }

  private static LocalDateTime local(long amount, long microsPerUnit) {
    long micros = amount * microsPerUnit;
    return LocalDateTime.ofEpochSecond(Math.floorDiv(micros, 1_000_000L),
        (int) (Math.floorMod(micros, 1_000_000L) * 1000L), ZoneOffset.UTC);
  }

  @Override
  public ConfigDef config() {
    return DEFINITION;
  }

  @Override
  public void close() {}
}
