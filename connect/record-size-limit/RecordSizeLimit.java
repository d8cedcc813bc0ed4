package dataingestion.connect.limits;

import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Collection;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.common.config.ConfigDef.Importance;
import org.apache.kafka.common.config.ConfigDef.Type;
import org.apache.kafka.connect.connector.ConnectRecord;
import org.apache.kafka.connect.data.Field;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.errors.DataException;
import org.apache.kafka.connect.json.JsonConverter;
import org.apache.kafka.connect.transforms.Transformation;

/**
 * Stops a source task at a record larger than the pipeline carries, with an error that names the
 * topic (the table), the record's key and the setting to raise. Without it the producer fails with
 * Kafka's RecordTooLargeException, which names neither. Nothing is skipped: the task fails before
 * the record is sent, so its offset is never committed and a restart reads it again.
 *
 * <p>The size is the record as the worker's JSON converter (schemas off) writes it. Most records are
 * let through on a cheap upper bound of that size; only a record near the limit is serialized.
 */
public final class RecordSizeLimit<R extends ConnectRecord<R>> implements Transformation<R> {
  public static final String MAX_BYTES = "max.bytes";
  public static final String SETTING = "setting";
  public static final String SCHEMAS = "schemas.enable";
  private static final ConfigDef DEFINITION = new ConfigDef()
      .define(MAX_BYTES, Type.LONG, ConfigDef.NO_DEFAULT_VALUE, ConfigDef.Range.atLeast(1), Importance.HIGH,
          "Largest key plus value, in bytes of JSON, that passes.")
      .define(SETTING, Type.STRING, "maxRecordBytes", Importance.LOW,
          "The setting a user raises to let larger records through; named in the error.")
      .define(SCHEMAS, Type.BOOLEAN, false, Importance.MEDIUM,
          "Whether the connector's JSON converter embeds each record's schema, which then counts too.");

  private long maxBytes;
  private String setting;
  private boolean schemas;
  private final JsonConverter json = new JsonConverter();
  private final Map<org.apache.kafka.connect.data.Schema, Long> schemaBounds = new ConcurrentHashMap<>();

  @Override
  public void configure(Map<String, ?> configs) {
    Map<String, Object> parsed = DEFINITION.parse(configs);
    maxBytes = (Long) parsed.get(MAX_BYTES);
    setting = (String) parsed.get(SETTING);
    schemas = (Boolean) parsed.get(SCHEMAS);
    json.configure(Map.of("schemas.enable", String.valueOf(schemas), "decimal.format", "NUMERIC"), false);
  }

  @Override
  public R apply(R record) {
    if (bound(record.key()) + bound(record.value()) + envelope(record.keySchema()) + envelope(record.valueSchema())
        <= maxBytes) {
      return record;
    }
    long size = serialized(record.topic(), record.keySchema(), record.key())
        + serialized(record.topic(), record.valueSchema(), record.value());
    if (size <= maxBytes) {
      return record;
    }
    throw new DataException("A change event of " + record.topic() + " with key " + describe(record.key()) + " is "
        + size + " bytes as JSON, above " + setting + " (" + maxBytes + " bytes). Raise it (`pulumi config set "
        + setting + " <size>`, then `pulumi up`): the source stopped at this change and skips nothing; it "
        + "goes on from here once the limit is raised.");
  }

  private long serialized(String topic, org.apache.kafka.connect.data.Schema schema, Object value) {
    return value == null ? 4 : json.fromConnectData(topic, schema, value).length;
  }

  /** With schemas embedded: at least the bytes of {"schema": ..., "payload": ...} around a value. */
  private long envelope(org.apache.kafka.connect.data.Schema schema) {
    if (!schemas || schema == null) {
      return 0;
    }
    return schemaBounds.computeIfAbsent(schema, RecordSizeLimit::schemaBound) + 32;
  }

  /** At least as many bytes as the JSON the converter writes for a schema. */
  static long schemaBound(org.apache.kafka.connect.data.Schema schema) {
    // {"type":"...","optional":false,"name":"...","version":1,"doc":"...","field":"..."}
    long total = 96 + 6L * (length(schema.name()) + length(schema.doc()));
    if (schema.parameters() != null) {
      for (Map.Entry<String, String> parameter : schema.parameters().entrySet()) {
        total += 6L * (length(parameter.getKey()) + length(parameter.getValue())) + 8;
      }
    }
    switch (schema.type()) {
      case STRUCT -> {
        for (Field field : schema.fields()) {
          total += schemaBound(field.schema()) + 6L * field.name().length() + 12;
        }
      }
      case ARRAY -> total += schemaBound(schema.valueSchema());
      case MAP -> total += schemaBound(schema.keySchema()) + schemaBound(schema.valueSchema());
      default -> { }
    }
    return total;
  }

  private static int length(String text) {
    return text == null ? 0 : text.length();
  }

  private static String describe(Object key) {
    String text = String.valueOf(key);
    return text.length() > 200 ? text.substring(0, 200) + "…" : text;
  }

  /** At least as many bytes as the JSON of {@code value}: each char may take 6 (an escape). */
  static long bound(Object value) {
    if (value == null) {
      return 4;
    }
    if (value instanceof String text) {
      return 6L * text.length() + 2;
    }
    // Numbers and booleans by their longest JSON (-9223372036854775808, -1.7976931348623157E308,
    // false): most columns are numbers, and writing each out as text only to count it is not free.
    if (value instanceof Long || value instanceof Integer || value instanceof Short || value instanceof Byte) {
      return 20;
    }
    if (value instanceof Double || value instanceof Float) {
      return 26;
    }
    if (value instanceof Boolean) {
      return 5;
    }
    if (value instanceof Struct struct) {
      long total = 2;
      for (Field field : struct.schema().fields()) {
        total += 6L * field.name().length() + 4 + bound(struct.get(field));
      }
      return total;
    }
    if (value instanceof byte[] bytes) {
      return 4L * bytes.length / 3 + 8;
    }
    if (value instanceof ByteBuffer buffer) {
      return 4L * buffer.remaining() / 3 + 8;
    }
    if (value instanceof BigDecimal decimal) {
      return decimal.toString().length() + 2;
    }
    if (value instanceof Collection<?> items) {
      long total = 2;
      for (Object item : items) {
        total += bound(item) + 1;
      }
      return total;
    }
    if (value instanceof Map<?, ?> map) {
      long total = 2;
      for (Map.Entry<?, ?> entry : map.entrySet()) {
        total += bound(String.valueOf(entry.getKey())) + bound(entry.getValue()) + 2;
      }
      return total;
    }
    return 6L * String.valueOf(value).getBytes(StandardCharsets.UTF_8).length + 32;
  }

  @Override
  public ConfigDef config() {
    return DEFINITION;
  }

  @Override
  public void close() {
    json.close();
  }
}
