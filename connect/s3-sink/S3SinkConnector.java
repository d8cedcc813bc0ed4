package dataingestion.connect.s3;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.connect.connector.Task;
import org.apache.kafka.connect.sink.SinkConnector;

/** Archives topics to S3 as JSON Lines objects, one series of objects per topic partition. */
public final class S3SinkConnector extends SinkConnector {
  public static final String VERSION = "2.0.0";
  private Map<String, String> properties;

  @Override
  public void start(Map<String, String> properties) {
    new S3SinkConfig(properties); // refuse a bad config when the connector starts, not in its tasks
    this.properties = properties;
  }

  @Override
  public Class<? extends Task> taskClass() {
    return S3SinkTask.class;
  }

  @Override
  public List<Map<String, String>> taskConfigs(int maxTasks) {
    List<Map<String, String>> configs = new ArrayList<>();
    for (int i = 0; i < maxTasks; i++) {
      configs.add(properties);
    }
    return configs;
  }

  @Override
  public void stop() {}

  @Override
  public ConfigDef config() {
    return S3SinkConfig.DEFINITION;
  }

  @Override
  public String version() {
    return VERSION;
  }
}
