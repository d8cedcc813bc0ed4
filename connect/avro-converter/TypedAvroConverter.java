package dataingestion.connect.avro;

import io.apicurio.registry.rest.client.exception.RestClientException;
import io.apicurio.registry.serde.avro.NonRecordContainer;
import io.apicurio.registry.utils.converter.AvroConverter;
import io.apicurio.registry.utils.converter.avro.AvroData;
import io.apicurio.registry.utils.converter.avro.AvroDataConfig;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.avro.LogicalType;
import org.apache.avro.LogicalTypes;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericContainer;
import org.apache.kafka.common.header.Headers;
import org.apache.kafka.connect.data.SchemaAndValue;
import org.apache.kafka.connect.errors.RetriableException;

/**
 * Apicurio's Avro converter, with Debezium's temporal and UUID columns registered as Avro logical
 * types. Apicurio's AvroData maps only Kafka Connect's own logical types (Decimal, Date, Time,
 * Timestamp); Debezium's microsecond types (io.debezium.time.MicroTimestamp and the like) would reach
 * the registry as bare longs, and a reader downstream (Spark, ClickHouse, fastavro) would see numbers
 * where the table has timestamps. The values on the wire are unchanged: the logical type only
 * annotates the long or int that Debezium already writes. Reading back, the annotations are taken
 * off again before Apicurio's AvroData sees the schema (it would make `date` Connect's own Date and
 * refuse the clash with Debezium's name): the sinks get exactly the schemas the source produced.
 *
 * <p>A registry that does not answer (its pod restarting) fails a conversion as retriable, so that
 * Connect retries it for the connector's {@code errors.retry.timeout} instead of failing the task at
 * once: Apicurio's client retries only a registry's 429. What the registry refuses (a schema under
 * the compatibility rule, an unknown id) fails the task as before.
 */
public class TypedAvroConverter<T> extends AvroConverter<T> {
  /** Debezium's semantic type (the Connect schema name) and the Avro logical type it stands for. */
  static final Map<String, LogicalType> LOGICAL_TYPES = Map.of(
      "io.debezium.time.Date", LogicalTypes.date(),
      "io.debezium.time.Time", LogicalTypes.timeMillis(),
      "io.debezium.time.MicroTime", LogicalTypes.timeMicros(),
      // PostgreSQL's timestamp (without time zone): wall-clock time, which Avro calls local.
      "io.debezium.time.Timestamp", LogicalTypes.localTimestampMillis(),
      "io.debezium.time.MicroTimestamp", LogicalTypes.localTimestampMicros(),
      "io.debezium.data.Uuid", LogicalTypes.uuid());

  private AvroData avroData;

  @Override
  public void configure(Map<String, ?> configs, boolean isKey) {
    super.configure(configs, isKey);
    avroData = new TypedAvroData(new AvroDataConfig(configs));
  }

  @Override
  @SuppressWarnings("unchecked")
  protected T applySchema(org.apache.kafka.connect.data.Schema schema, Object value) {
    return (T) avroData.fromConnectData(schema, value);
  }

  @Override
  public byte[] fromConnectData(String topic, org.apache.kafka.connect.data.Schema schema, Object value) {
    try {
      return super.fromConnectData(topic, schema, value);
    } catch (RuntimeException e) {
      throw retriableIfAway(e);
    }
  }

  @Override
  public byte[] fromConnectData(String topic, Headers headers, org.apache.kafka.connect.data.Schema schema, Object value) {
    try {
      return super.fromConnectData(topic, headers, schema, value);
    } catch (RuntimeException e) {
      throw retriableIfAway(e);
    }
  }

  @Override
  public SchemaAndValue toConnectData(String topic, byte[] value) {
    try {
      return super.toConnectData(topic, value);
    } catch (RuntimeException e) {
      throw retriableIfAway(e);
    }
  }

  @Override
  public SchemaAndValue toConnectData(String topic, Headers headers, byte[] value) {
    try {
      return super.toConnectData(topic, headers, value);
    } catch (RuntimeException e) {
      throw retriableIfAway(e);
    }
  }

  /** A failure to reach the registry (no answer, or a 5xx) as retriable; anything else as it is. */
  static RuntimeException retriableIfAway(RuntimeException failure) {
    for (Throwable cause = failure; cause != null; cause = cause.getCause()) {
      if (cause instanceof RetriableException) {
        return failure;
      }
      if (cause instanceof RestClientException rest) {
        Integer code = rest.getError() == null ? null : rest.getError().getErrorCode();
        if (code != null && code < 500) {
          return failure;
        }
        String what = rest.getError() == null ? rest.toString() : rest.getError().getName() + ": " + rest.getError().getMessage();
        return new RetriableException("the schema registry did not answer (" + what + "); retrying", failure);
      }
    }
    return failure;
  }

  @Override
  protected SchemaAndValue toSchemaAndValue(T value) {
    if (value instanceof GenericContainer container) {
      Object data = value instanceof NonRecordContainer<?> wrapped ? wrapped.getValue() : value;
      return avroData.toConnectData(container.getSchema(), data, null);
    }
    return new SchemaAndValue(null, value);
  }

  /** AvroData whose schemas carry the logical types above. */
  static final class TypedAvroData extends AvroData {
    // As many schemas as AvroData's own caches hold by default: every live table version, keys and values.
    private static final int SCHEMAS = 1000;

    // AvroData caches the schemas it derives: each is annotated once, when first seen.
    private final Map<Lru.Identity, Boolean> annotated = new Lru<>(SCHEMAS);

    // A registered schema (annotated) → the same without the annotations this class adds. Apicurio's
    // client parses a schema again whenever its cache refreshes and hands out a new object with the
    // same content, so the copies are interned by content: AvroData's schema cache then always meets
    // the very key it holds, instead of comparing two equal schemas field by field for every record.
    private final Map<Lru.Identity, Schema> plain = new Lru<>(SCHEMAS);
    private final Map<Schema, Schema> interned = new Lru<>(SCHEMAS);

    TypedAvroData(AvroDataConfig config) {
      super(config);
    }

    @Override
    public SchemaAndValue toConnectData(Schema schema, Object value, Integer version) {
      return super.toConnectData(plain(schema), value, version);
    }

    private synchronized Schema plain(Schema registered) {
      Lru.Identity key = new Lru.Identity(registered);
      Schema copy = plain.get(key);
      if (copy == null) {
        copy = interned.computeIfAbsent(unannotated(registered, new IdentityHashMap<>()), fresh -> fresh);
        plain.put(key, copy);
      }
      return copy;
    }

    /** A copy of `schema` without the logical types of LOGICAL_TYPES on Debezium's named types. */
    private static Schema unannotated(Schema schema, Map<Schema, Schema> copies) {
      Schema done = copies.get(schema);
      if (done != null) {
        return done;
      }
      Schema copy = switch (schema.getType()) {
        case RECORD -> {
          Schema record = Schema.createRecord(schema.getName(), schema.getDoc(), schema.getNamespace(), schema.isError());
          copies.put(schema, record); // before the fields: a record may refer to itself
          List<Schema.Field> fields = new ArrayList<>();
          for (Schema.Field field : schema.getFields()) {
            Schema.Field copied = new Schema.Field(field.name(), unannotated(field.schema(), copies), field.doc(),
                field.defaultVal(), field.order());
            field.getObjectProps().forEach(copied::addProp);
            field.aliases().forEach(copied::addAlias);
            fields.add(copied);
          }
          record.setFields(fields);
          schema.getAliases().forEach(record::addAlias);
          yield record;
        }
        case UNION -> Schema.createUnion(schema.getTypes().stream().map(member -> unannotated(member, copies)).toList());
        case ARRAY -> Schema.createArray(unannotated(schema.getElementType(), copies));
        case MAP -> Schema.createMap(unannotated(schema.getValueType(), copies));
        case ENUM, FIXED -> schema;
        default -> {
          String name = schema.getProp(AvroData.CONNECT_NAME_PROP);
          if (name == null || !LOGICAL_TYPES.containsKey(name)) {
            yield schema;
          }
          Schema primitive = Schema.create(schema.getType());
          schema.getObjectProps().forEach((key, prop) -> {
            if (!key.equals(LogicalType.LOGICAL_TYPE_PROP)) {
              primitive.addProp(key, prop);
            }
          });
          yield primitive;
        }
      };
      if (copy != schema && (schema.getType() == Schema.Type.RECORD || schema.getType() == Schema.Type.ARRAY
          || schema.getType() == Schema.Type.MAP)) {
        schema.getObjectProps().forEach(copy::addProp);
      }
      copies.put(schema, copy);
      return copy;
    }

    @Override
    public Schema fromConnectSchema(org.apache.kafka.connect.data.Schema schema) {
      Schema avro = super.fromConnectSchema(schema);
      if (avro != null && firstSight(avro)) {
        annotate(avro, Collections.newSetFromMap(new IdentityHashMap<>()));
      }
      return avro;
    }

    private synchronized boolean firstSight(Schema avro) {
      return annotated.put(new Lru.Identity(avro), Boolean.TRUE) == null;
    }

    private static void annotate(Schema schema, Set<Schema> seen) {
      if (!seen.add(schema)) {
        return;
      }
      switch (schema.getType()) {
        case RECORD -> schema.getFields().forEach(field -> annotate(field.schema(), seen));
        case UNION -> schema.getTypes().forEach(member -> annotate(member, seen));
        case ARRAY -> annotate(schema.getElementType(), seen);
        case MAP -> annotate(schema.getValueType(), seen);
        default -> {
          String name = schema.getProp(AvroData.CONNECT_NAME_PROP);
          LogicalType logical = name == null ? null : LOGICAL_TYPES.get(name);
          if (logical != null && schema.getLogicalType() == null) {
            logical.addToSchema(schema);
          }
        }
      }
    }
  }
}
