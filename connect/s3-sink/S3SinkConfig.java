package dataingestion.connect.s3;

import java.net.URI;
import java.util.Map;
import org.apache.kafka.common.config.AbstractConfig;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.common.config.ConfigDef.Importance;
import org.apache.kafka.common.config.ConfigDef.Type;
import org.apache.kafka.common.config.ConfigException;
import org.apache.kafka.common.config.types.Password;

/** The sink's settings. Credentials are PASSWORD-typed so Connect masks them in logs and REST. */
public final class S3SinkConfig extends AbstractConfig {
  public static final String BUCKET = "s3.bucket";
  public static final String REGION = "s3.region";
  public static final String PREFIX = "s3.prefix";
  public static final String ENDPOINT = "s3.endpoint";
  public static final String PATH_STYLE = "s3.path.style.access";
  public static final String ACCESS_KEY_ID = "aws.access.key.id";
  public static final String SECRET_ACCESS_KEY = "aws.secret.access.key";
  public static final String MAX_RECORDS = "file.max.records";
  public static final String ROTATE_INTERVAL_MS = "file.rotate.interval.ms";
  public static final String COMPRESSION = "file.compression";
  public static final String RETRY_BACKOFF_MS = "s3.retry.backoff.ms";
  public static final String OUTAGE_WARN_MS = "s3.outage.warn.ms";
  public static final String KAFKA_BOOTSTRAP_SERVERS = "kafka.bootstrap.servers";

  public static final ConfigDef DEFINITION =
      new ConfigDef()
          .define(BUCKET, Type.STRING, ConfigDef.NO_DEFAULT_VALUE, new ConfigDef.NonEmptyString(),
              Importance.HIGH, "Bucket the records are archived into.")
          .define(REGION, Type.STRING, ConfigDef.NO_DEFAULT_VALUE, new ConfigDef.NonEmptyString(),
              Importance.HIGH, "AWS region of the bucket; part of every request's signature.")
          .define(PREFIX, Type.STRING, "", Importance.HIGH,
              "Key prefix (folder) the objects are written under, without a trailing '/'.")
          .define(ENDPOINT, Type.STRING, "", Importance.LOW,
              "S3 endpoint URL; empty means AWS's regional endpoint. Set for an S3-compatible store.")
          .define(PATH_STYLE, Type.BOOLEAN, false, Importance.LOW,
              "Address the bucket in the path instead of the host name.")
          .define(ACCESS_KEY_ID, Type.PASSWORD, ConfigDef.NO_DEFAULT_VALUE, Importance.HIGH,
              "Access key id; give a config-provider placeholder, not the value.")
          .define(SECRET_ACCESS_KEY, Type.PASSWORD, ConfigDef.NO_DEFAULT_VALUE, Importance.HIGH,
              "Secret access key; give a config-provider placeholder, not the value.")
          .define(MAX_RECORDS, Type.INT, 50_000, ConfigDef.Range.atLeast(1), Importance.MEDIUM,
              "An object is written once it holds this many records of one partition.")
          .define(ROTATE_INTERVAL_MS, Type.LONG, 60_000L, ConfigDef.Range.atLeast(1), Importance.MEDIUM,
              "An object is written at the latest this long after its first record arrived.")
          .define(COMPRESSION, Type.STRING, "gzip", ConfigDef.ValidString.in("gzip", "none"),
              Importance.MEDIUM, "Compression of the JSON Lines objects.")
          .define(RETRY_BACKOFF_MS, Type.LONG, 5_000L, ConfigDef.Range.atLeast(0), Importance.LOW,
              "First wait before an upload that failed transiently is tried again; it doubles with each "
              + "failure, up to 30 s.")
          .define(OUTAGE_WARN_MS, Type.LONG, 300_000L, ConfigDef.Range.atLeast(0), Importance.LOW,
              "Once uploads have failed for this long, each failure is logged as an ERROR.")
          .define(KAFKA_BOOTSTRAP_SERVERS, Type.STRING, ConfigDef.NO_DEFAULT_VALUE, new ConfigDef.NonEmptyString(),
              Importance.HIGH, "The Kafka cluster the topics are read from; the sink reads each topic's id "
              + "there, to name objects so that a new cluster's never replace an old one's.");

  public S3SinkConfig(Map<String, String> properties) {
    super(DEFINITION, properties);
    String endpoint = getString(ENDPOINT);
    if (!endpoint.isEmpty()) {
      URI uri = URI.create(endpoint);
      if (uri.getScheme() == null || uri.getHost() == null) {
        throw new ConfigException(ENDPOINT, endpoint, "must be an absolute URL such as https://s3.example.com");
      }
    }
    String prefix = getString(PREFIX);
    if (prefix.startsWith("/") || prefix.endsWith("/")) {
      throw new ConfigException(PREFIX, prefix, "must not start or end with '/'");
    }
  }

  String bucketName() { return getString(BUCKET); }
  String region() { return getString(REGION); }
  String prefix() { return getString(PREFIX); }
  boolean gzip() { return "gzip".equals(getString(COMPRESSION)); }
  int maxRecords() { return getInt(MAX_RECORDS); }
  long rotateIntervalMs() { return getLong(ROTATE_INTERVAL_MS); }
  long retryBackoffMs() { return getLong(RETRY_BACKOFF_MS); }
  long outageWarnMs() { return getLong(OUTAGE_WARN_MS); }
  String kafkaBootstrapServers() { return getString(KAFKA_BOOTSTRAP_SERVERS); }

  Bucket bucket() {
    Password id = getPassword(ACCESS_KEY_ID);
    Password secret = getPassword(SECRET_ACCESS_KEY);
    return new Bucket(bucketName(), region(), getString(ENDPOINT).replaceAll("/+$", ""), getBoolean(PATH_STYLE),
        id.value(), secret.value());
  }
}
