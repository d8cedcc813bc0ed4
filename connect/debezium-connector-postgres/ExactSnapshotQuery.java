package dataingestion.connect.debezium;

import io.debezium.bean.StandardBeanNames;
import io.debezium.bean.spi.BeanRegistry;
import io.debezium.bean.spi.BeanRegistryAware;
import io.debezium.relational.Column;
import io.debezium.relational.RelationalDatabaseSchema;
import io.debezium.relational.TableId;
import io.debezium.snapshot.spi.SnapshotQuery;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * How a snapshot that reads whole tables (the first one, one after a lost slot, a blocking one) selects
 * a table: each column as Debezium would, but a {@code date} column as its text. The JDBC driver
 * reads a date through the Julian-Gregorian calendar, which has no 1582-10-05 to 1582-10-14: such a
 * date would arrive ten days later. {@link ExactValues} reads the text as PostgreSQL wrote it, as it
 * reads the stream's dates.
 */
public final class ExactSnapshotQuery implements SnapshotQuery, BeanRegistryAware {
  public static final String NAME = "dataingestion-exact-values";

  private RelationalDatabaseSchema schema;

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public void configure(Map<String, ?> properties) {
  }

  @Override
  public void injectBeanRegistry(BeanRegistry registry) {
    schema = registry.lookupByName(StandardBeanNames.DATABASE_SCHEMA, RelationalDatabaseSchema.class);
  }

  /** {@code tableId} and {@code columns} quoted as Debezium quotes them ({@code "sales"."orders"}, {@code "placed_on"}). */
  @Override
  public Optional<String> snapshotQuery(String tableId, List<String> columns) {
    if (columns.isEmpty()) {
      return Optional.empty();
    }
    Set<String> dates = dateColumns(tableId);
    return Optional.of(columns.stream()
        .map(column -> dates.contains(column.substring(1, column.length() - 1)) ? column + "::text AS " + column : column)
        .collect(Collectors.joining(", ", "SELECT ", " FROM " + tableId)));
  }

  private Set<String> dateColumns(String tableId) {
    for (TableId id : schema.tableIds()) {
      if (id.toDoubleQuotedString().equals(tableId)) {
        return schema.tableFor(id).columns().stream().filter(ExactValues::isDate).map(Column::name)
            .collect(Collectors.toSet());
      }
    }
    return Set.of();
  }
}
