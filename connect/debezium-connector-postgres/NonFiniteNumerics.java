package dataingestion.connect.debezium;

import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.connect.connector.ConnectRecord;
import org.apache.kafka.connect.data.Decimal;
import org.apache.kafka.connect.data.Field;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.transforms.Transformation;

/**
 * A numeric's NaN or ±Infinity, which ExactValues marks, leaves in the change as a null with a header
 * that names it: {@code dataingestion.nonfinite.after.ratio: NaN}. Every decimal (Avro's, Iceberg's,
 * Kafka Connect's) lacks these values, and a null alone would say nothing; the archive's sinks read
 * the header and write the value back (the JSON Lines archive as the text {@code "NaN"}, an Iceberg
 * table in the column, or in {@code _cdc.nonfinite} where the column is a decimal).
 *
 * <p>A float's NaN or ±Infinity stays in its column and gets the same header: Kafka's JsonConverter
 * writes it as text and reads that text back as 0.0, so that a sink behind JSON finds the value there.
 *
 * <p>An array no list of its column's element type holds (more dimensions than declared, a numeric's
 * NaN among its elements), which ExactValues marks, leaves as a null with a header holding it as
 * JSON: {@code dataingestion.array.after.grid: [[1,2],[3,4]]}; the JSON Lines archive writes that
 * JSON in the column, an Iceberg table in {@code _cdc.arrays}.
 */
public final class NonFiniteNumerics<R extends ConnectRecord<R>> implements Transformation<R> {
  public static final String HEADER = "dataingestion.nonfinite.";
  public static final String ARRAY_HEADER = "dataingestion.array.";
  private static final String[] IMAGES = {"before", "after"};

  // Debezium builds one schema object per table version: its numeric and array columns are found once.
  private final Map<Schema, List<Field>> columns = new IdentityHashMap<>();

  @Override
  public R apply(R record) {
    if (!(record.value() instanceof Struct envelope)) {
      return record;
    }
    for (String image : IMAGES) {
      Field field = envelope.schema().field(image);
      if (field == null || !(envelope.get(field) instanceof Struct row)) {
        continue;
      }
      for (Field column : columns.computeIfAbsent(row.schema(), NonFiniteNumerics::markedColumns)) {
        Object value = row.get(column);
        if (value instanceof ExactValues.UnheldArray array) {
          row.put(column, null);  // no list of its column's element type holds it
          record.headers().addString(ARRAY_HEADER + image + "." + column.name(), array.json());
          continue;
        }
        String text = value instanceof ExactValues.NonFinite marker ? marker.text()
            : value instanceof Double || value instanceof Float ? ExactValues.nonFinite(((Number) value).doubleValue())
            : null;
        if (text != null) {
          if (value instanceof ExactValues.NonFinite) {
            row.put(column, null);  // no decimal holds it
          }
          record.headers().addString(HEADER + image + "." + column.name(), text);
        }
      }
    }
    return record;
  }

  private static List<Field> markedColumns(Schema row) {
    List<Field> found = new ArrayList<>();
    for (Field field : row.fields()) {
      String name = field.schema().name();
      Schema.Type type = field.schema().type();
      if (Decimal.LOGICAL_NAME.equals(name) || "io.debezium.data.VariableScaleDecimal".equals(name)
          || (name == null && (type == Schema.Type.FLOAT32 || type == Schema.Type.FLOAT64 || type == Schema.Type.ARRAY))) {
        found.add(field);
      }
    }
    return found;
  }

  @Override
  public ConfigDef config() {
    return new ConfigDef();
  }

  @Override
  public void configure(Map<String, ?> configs) {
  }

  @Override
  public void close() {
  }
}
