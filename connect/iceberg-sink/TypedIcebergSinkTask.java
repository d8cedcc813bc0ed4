package dataingestion.connect.iceberg;

import java.io.Closeable;
import java.io.IOException;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.iceberg.CatalogUtil;
import org.apache.iceberg.PartitionSpec;
import org.apache.iceberg.Table;
import org.apache.iceberg.UpdateSchema;
import org.apache.iceberg.catalog.Catalog;
import org.apache.iceberg.catalog.TableIdentifier;
import org.apache.iceberg.connect.IcebergSinkTask;
import org.apache.iceberg.exceptions.AlreadyExistsException;
import org.apache.iceberg.types.Type;
import org.apache.iceberg.types.Types;
import org.apache.kafka.connect.data.Decimal;
import org.apache.kafka.connect.data.Field;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.errors.ConnectException;
import org.apache.kafka.connect.sink.SinkRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Iceberg's sink task, with every table created (and every added column typed) from the change
 * events' own schemas before the sink writes to it.
 *
 * <p>Iceberg's sink types a new table from the Connect schema alone, where a timestamp without time
 * zone, microseconds and a numeric's precision have no type: it would make them longs, text or
 * decimal(38). Debezium's schemas name them, and {@link ChangelogRow} keeps the names; here they
 * become timestamp, timestamptz, time, date and decimal(p,s). The sink's own auto-creation stays
 * off, so a table never comes into being with other types; its schema evolution stays on for what
 * this does not cover (a widened integer).
 */
public class TypedIcebergSinkTask extends IcebergSinkTask {
  public static final String PARTITION_BY = "dataingestion.partition-by";
  private static final Logger LOG = LoggerFactory.getLogger(TypedIcebergSinkTask.class);
  private static final String CATALOG_PREFIX = "iceberg.catalog.";
  private static final String TABLE_PROPS_PREFIX = "iceberg.tables.auto-create-props.";

  private Catalog catalog;
  private final Map<String, String> tableProperties = new HashMap<>();
  private String partitionBy;
  // The schema each table was last checked against: a new schema object means a new table version.
  private final Map<String, Schema> checked = new HashMap<>();

  @Override
  public void start(Map<String, String> props) {
    Map<String, String> catalogProps = new HashMap<>();
    props.forEach((key, value) -> {
      if (key.startsWith(CATALOG_PREFIX)) {
        catalogProps.put(key.substring(CATALOG_PREFIX.length()), value);
      } else if (key.startsWith(TABLE_PROPS_PREFIX)) {
        tableProperties.put(key.substring(TABLE_PROPS_PREFIX.length()), value);
      }
    });
    partitionBy = props.getOrDefault(PARTITION_BY, "day");
    catalog = CatalogUtil.buildIcebergCatalog(props.getOrDefault("iceberg.catalog", "iceberg"), catalogProps, null);
    checked.clear();
    super.start(props);
  }

  @Override
  public void put(Collection<SinkRecord> records) {
    for (SinkRecord record : records) {
      if (record.value() instanceof Struct value && value.schema().field(ChangelogRow.CDC) != null) {
        String target = value.getStruct(ChangelogRow.CDC).getString("target");
        if (checked.get(target) != record.valueSchema()) {
          ensureTable(TableIdentifier.parse(target), record.valueSchema());
          checked.put(target, record.valueSchema());
        }
      }
    }
    super.put(records);
  }

  private void ensureTable(TableIdentifier id, Schema schema) {
    try {
      if (!catalog.tableExists(id)) {
        org.apache.iceberg.Schema iceberg = new org.apache.iceberg.Schema(
            ((Types.StructType) icebergType(schema, new AtomicInteger())).fields());
        PartitionSpec.Builder spec = PartitionSpec.builderFor(iceberg);
        String committedAt = ChangelogRow.CDC + ".committed_at";
        PartitionSpec partitioned = "hour".equals(partitionBy) ? spec.hour(committedAt).build() : spec.day(committedAt).build();
        try {
          catalog.createTable(id, iceberg, partitioned, tableProperties);
          LOG.info("Created Iceberg table {} with {}", id, iceberg);
          return;
        } catch (AlreadyExistsException raced) {
          // another task created it first: check its columns below
        }
      }
      addMissingColumns(catalog.loadTable(id), schema);
    } catch (RuntimeException failure) {
      throw new ConnectException("Iceberg sink: cannot create or update table " + id + " in the catalog: " + failure
          + ". Check the sink's access to the catalog and the warehouse (docs/iceberg.md).", failure);
    }
  }

  private static void addMissingColumns(Table table, Schema schema) {
    org.apache.iceberg.Schema current = table.schema();
    UpdateSchema update = table.updateSchema();
    boolean changed = false;
    for (Field field : schema.fields()) {
      Types.NestedField existing = current.findField(field.name());
      Type wanted = icebergType(field.schema(), new AtomicInteger(1000));
      if (existing == null) {
        update.addColumn(field.name(), wanted);
        changed = true;
      } else if (existing.type().isStructType() && wanted.isStructType()) {
        // _cdc of a table created before one of its fields was (nonfinite, arrays): the field is added.
        for (Types.NestedField nested : wanted.asStructType().fields()) {
          if (existing.type().asStructType().field(nested.name()) == null) {
            update.addColumn(field.name(), nested.name(), nested.type());
            changed = true;
          }
        }
      } else if (existing.isRequired() && field.schema().isOptional()) {
        // A table created before TRUNCATE was captured: its rows may now hold no values.
        update.makeColumnOptional(field.name());
        changed = true;
      } else if (existing.type() instanceof Types.DecimalType had && wanted instanceof Types.DecimalType now
          && had.scale() == now.scale() && now.precision() > had.precision()) {
        update.updateColumn(field.name(), (Types.DecimalType) wanted);
        changed = true;
      }
    }
    if (changed) {
      update.commit();
      LOG.info("Evolved Iceberg table {} to {}", table.name(), table.schema());
    }
  }

  /** The Iceberg type of a field of a changelog row, from the names Debezium and ChangelogRow give. */
  static Type icebergType(Schema schema, AtomicInteger ids) {
    String name = schema.name() == null ? "" : schema.name();
    switch (name) {
      case ChangelogRow.TIMESTAMP:
        return Types.TimestampType.withoutZone();
      case ChangelogRow.ZONED_TIMESTAMP:
      case org.apache.kafka.connect.data.Timestamp.LOGICAL_NAME:
        return Types.TimestampType.withZone();
      case ChangelogRow.TIME:
      case org.apache.kafka.connect.data.Time.LOGICAL_NAME:
        return Types.TimeType.get();
      case "io.debezium.time.Date":
      case org.apache.kafka.connect.data.Date.LOGICAL_NAME:
        return Types.DateType.get();
      case Decimal.LOGICAL_NAME: {
        int scale = Integer.parseInt(schema.parameters().get(Decimal.SCALE_FIELD));
        String declared = schema.parameters().get("connect.decimal.precision");
        int precision = declared == null ? 38 : Integer.parseInt(declared);
        return Types.DecimalType.of(Math.min(38, Math.max(precision, scale)), scale);
      }
      default:
        break;
    }
    switch (schema.type()) {
      case BOOLEAN:
        return Types.BooleanType.get();
      case INT8:
      case INT16:
      case INT32:
        return Types.IntegerType.get();
      case INT64:
        return Types.LongType.get();
      case FLOAT32:
        return Types.FloatType.get();
      case FLOAT64:
        return Types.DoubleType.get();
      case BYTES:
        return Types.BinaryType.get();
      case ARRAY:
        return Types.ListType.ofOptional(ids.incrementAndGet(), icebergType(schema.valueSchema(), ids));
      case MAP:
        return Types.MapType.ofOptional(ids.incrementAndGet(), ids.incrementAndGet(),
            icebergType(schema.keySchema(), ids), icebergType(schema.valueSchema(), ids));
      case STRUCT: {
        List<Types.NestedField> fields = schema.fields().stream()
            .map(field -> {
              int id = ids.incrementAndGet();
              Type type = icebergType(field.schema(), ids);
              return field.schema().isOptional()
                  ? Types.NestedField.optional(id, field.name(), type, field.schema().doc())
                  : Types.NestedField.required(id, field.name(), type, field.schema().doc());
            })
            .toList();
        return Types.StructType.of(fields);
      }
      default:
        return Types.StringType.get();
    }
  }

  @Override
  public void stop() {
    super.stop();
    if (catalog instanceof Closeable closeable) {
      try {
        closeable.close();
      } catch (IOException ignored) {
        // the task is stopping
      }
    }
  }
}
