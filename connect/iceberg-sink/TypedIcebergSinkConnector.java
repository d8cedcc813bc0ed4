package dataingestion.connect.iceberg;

import org.apache.iceberg.connect.IcebergSinkConnector;
import org.apache.kafka.connect.connector.Task;

/** Apache Iceberg's sink connector, running {@link TypedIcebergSinkTask}: tables typed from the changes. */
public class TypedIcebergSinkConnector extends IcebergSinkConnector {
  @Override
  public Class<? extends Task> taskClass() {
    return TypedIcebergSinkTask.class;
  }
}
