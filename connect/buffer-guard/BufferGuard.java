package dataingestion.connect.guard;

import java.util.List;
import java.util.Map;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.common.config.ConfigDef.Importance;
import org.apache.kafka.common.config.ConfigDef.Range;
import org.apache.kafka.common.config.ConfigDef.Type;
import org.apache.kafka.connect.connector.Task;
import org.apache.kafka.connect.source.SourceConnector;

/**
 * Keeps Kafka's log volumes from filling while the archive cannot take what the source writes (S3
 * unreachable, the sink failed). A connector of its own, with one task that writes no record: it
 * runs whatever state the source and the sink are in. Every few seconds the task reads each broker's
 * log directory and the sink's committed offsets, and
 * <ul>
 *   <li>above {@code free.at} of the volume, deletes change records the sink has already archived
 *       (below its committed offsets): Kafka keeps what it can for direct consumers and gives up
 *       only what the archive holds;</li>
 *   <li>above {@code stop.at}, stops the source through the worker's REST API. Stopped, not paused:
 *       a paused task keeps its replication connection open and unread, and PostgreSQL cannot then
 *       end it when it gives the slot up, which holds up its checkpoints. The rest of the outage
 *       waits in PostgreSQL's WAL for the slot, which {@code max_slot_wal_keep_size} bounds;</li>
 *   <li>below {@code resume.at}, resumes the source it stopped (never one a person stopped).</li>
 * </ul>
 * Each round it writes what it saw to a one-partition compacted topic, which {@code make status}
 * reads to say how long an outage the pipeline has left.
 */
public final class BufferGuard extends SourceConnector {
  static final String VERSION = "1.0.0";
  public static final String BOOTSTRAP = "bootstrap.servers";
  public static final String GROUP = "group";
  public static final String TOPICS = "topics.regex";
  public static final String CAPACITY = "capacity.bytes";
  public static final String FREE_AT = "free.at";
  public static final String STOP_AT = "stop.at";
  public static final String RESUME_AT = "resume.at";
  public static final String INTERVAL = "check.interval.ms";
  public static final String CONNECTOR = "connector";
  public static final String REST_URL = "rest.url";
  public static final String REST_AUTHORIZATION = "rest.authorization.file";
  public static final String REPORT_TOPIC = "report.topic";
  public static final String REPLICATION = "report.replication.factor";
  static final String REPORT_KEY = "buffers";
  static final ConfigDef DEFINITION = new ConfigDef()
      .define(BOOTSTRAP, Type.STRING, ConfigDef.NO_DEFAULT_VALUE, Importance.HIGH, "The brokers to watch.")
      .define(GROUP, Type.STRING, ConfigDef.NO_DEFAULT_VALUE, Importance.HIGH,
          "The sink's consumer group: its committed offsets are what the archive holds.")
      .define(TOPICS, Type.STRING, ConfigDef.NO_DEFAULT_VALUE, Importance.HIGH, "The change topics.")
      .define(CAPACITY, Type.LONG, ConfigDef.NO_DEFAULT_VALUE, Range.atLeast(1), Importance.HIGH,
          "Each broker's log volume, in bytes (kafkaStorage).")
      .define(FREE_AT, Type.DOUBLE, 0.70, Range.between(0.0, 1.0), Importance.MEDIUM,
          "Share of the volume above which archived change records are deleted.")
      .define(STOP_AT, Type.DOUBLE, 0.85, Range.between(0.0, 1.0), Importance.MEDIUM,
          "Share of the volume above which the source is stopped.")
      .define(RESUME_AT, Type.DOUBLE, 0.60, Range.between(0.0, 1.0), Importance.MEDIUM,
          "Share of the volume below which a source the guard stopped is resumed.")
      .define(INTERVAL, Type.LONG, 5000L, Range.atLeast(100), Importance.LOW, "How often to look.")
      .define(CONNECTOR, Type.STRING, ConfigDef.NO_DEFAULT_VALUE, Importance.HIGH, "The source connector's name.")
      .define(REST_URL, Type.STRING, ConfigDef.NO_DEFAULT_VALUE, Importance.HIGH, "This worker's REST API.")
      .define(REST_AUTHORIZATION, Type.STRING, "", Importance.MEDIUM,
          "A file holding the Authorization header for the REST API (read, never logged).")
      .define(REPORT_TOPIC, Type.STRING, ConfigDef.NO_DEFAULT_VALUE, Importance.HIGH, "Where each round's view goes.")
      .define(REPLICATION, Type.SHORT, (short) 3, Importance.LOW, "The report topic's replication factor.");

  private Map<String, String> properties;

  @Override
  public void start(Map<String, String> props) {
    DEFINITION.parse(props);  // a wrong setting fails the connector, not its task later
    properties = Map.copyOf(props);
  }

  @Override
  public Class<? extends Task> taskClass() {
    return BufferGuardTask.class;
  }

  @Override
  public List<Map<String, String>> taskConfigs(int maxTasks) {
    return List.of(properties);  // one guard: two would stop and resume the source against each other
  }

  @Override
  public void stop() {
  }

  @Override
  public ConfigDef config() {
    return DEFINITION;
  }

  @Override
  public String version() {
    return VERSION;
  }
}
