package dataingestion.connect.s3;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamWriteFeature;
import java.io.BufferedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Collection;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.zip.GZIPOutputStream;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.errors.ConnectException;
import org.apache.kafka.connect.errors.DataException;
import org.apache.kafka.connect.errors.RetriableException;
import org.apache.kafka.connect.header.Header;
import org.apache.kafka.connect.json.JsonConverter;
import org.apache.kafka.connect.sink.SinkRecord;
import org.apache.kafka.connect.sink.SinkTask;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Buffers each partition's records into one object and uploads it when it is full or old enough.
 *
 * <p>What makes it lose nothing, under any sequence of failures:
 * <ul>
 *   <li>An offset is committed only once every record before it is in S3 ({@link #preCommit}).
 *   <li>A failed upload keeps its batch: the task asks Connect to redeliver (with backoff) and
 *       skips only records it already holds, so a retry uploads exactly the same records.
 *   <li>Objects are written with {@code If-None-Match: *} and never overwritten. A key names the
 *       topic's id (new for every Kafka cluster or re-created topic) and the first and last offset,
 *       so one key always holds the same records: a replay that finds its key taken is already done.
 * </ul>
 * A crash replays whatever was not yet committed: at least once, and duplicates carry their offsets.
 */
public final class S3SinkTask extends SinkTask {
  private static final Logger LOG = LoggerFactory.getLogger(S3SinkTask.class);
  // A new IAM key or policy takes a while to reach every S3 endpoint: early refusals are retried.
  private static final long IAM_PROPAGATION_MS = 120_000L;
  private static final long MAX_BACKOFF_MS = 30_000L;

  /** Where the objects go: the bucket, or a test's stand-in. */
  interface ObjectStore extends AutoCloseable {
    /** Writes the object unless its key is taken; false when it was. */
    boolean putIfAbsent(String key, byte[] body, String contentType) throws Bucket.UploadException;

    @Override
    void close();
  }

  /** Each topic's id, which names its objects. */
  interface TopicIds extends AutoCloseable {
    String of(String topic) throws Exception;

    @Override
    void close();
  }

  /** The ids as the Kafka cluster the topics are read from has them. */
  static final class KafkaTopicIds implements TopicIds {
    private final Admin admin;

    KafkaTopicIds(S3SinkConfig config) {
      admin = Admin.create(Map.of(
          AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, config.kafkaBootstrapServers(),
          AdminClientConfig.CLIENT_ID_CONFIG, "s3-sink-topic-ids"));
    }

    @Override
    public String of(String topic) throws Exception {
      TopicDescription description = admin.describeTopics(Set.of(topic)).allTopicNames()
          .get(30, TimeUnit.SECONDS).get(topic);
      return description.topicId().toString();
    }

    @Override
    public void close() {
      admin.close(Duration.ofSeconds(5));
    }
  }

  private final Function<S3SinkConfig, ObjectStore> openStore;
  private final Function<S3SinkConfig, TopicIds> openTopicIds;
  private S3SinkConfig config;
  private ObjectStore s3;
  private TopicIds ids;
  private long startedAt;
  private final JsonConverter json = new JsonConverter();
  private static final byte[] VALUE_FIELD = ",\"value\":".getBytes(StandardCharsets.UTF_8);
  private static final byte[] LINE_END = "}\n".getBytes(StandardCharsets.UTF_8);
  private static final byte[] NULL = "null".getBytes(StandardCharsets.UTF_8);
  // The headers the source's NonFiniteNumerics (Debezium's plugin directory, another class loader) adds:
  // a numeric's NaN or ±Infinity by its word, an array its column's list cannot hold as JSON.
  static final String NON_FINITE_HEADER = "dataingestion.nonfinite.";
  static final String ARRAY_HEADER = "dataingestion.array.";
  // A typed record's generator writes into the object's stream: it must neither close nor flush it.
  private static final JsonFactory JSON_FACTORY = JsonFactory.builder()
      .disable(StreamWriteFeature.AUTO_CLOSE_TARGET).disable(StreamWriteFeature.FLUSH_PASSED_TO_STREAM).build();
  private final Map<TopicPartition, PartitionState> partitions = new HashMap<>();
  private final Map<String, String> topicIds = new HashMap<>();
  private long failingSince = -1; // when the current run of failed uploads began; -1: none
  private int failures;
  private long retryAt;

  /** What the task knows of one partition since it was assigned. */
  private static final class PartitionState {
    Batch batch;
    long next = -1; // the next offset to take; lower ones are in the batch or in S3. -1: not known yet
    long written = -1; // every record up to this offset is in S3
  }

  private final class Batch {
    final TopicPartition partition;
    final String topicId;
    final long firstOffset;
    final long openedAt;
    final ByteArrayOutputStream bytes = new ByteArrayOutputStream(1 << 20);
    final OutputStream out;
    long lastOffset;
    int records;
    byte[] finished;

    Batch(TopicPartition partition, String topicId, long firstOffset, long now) {
      this.partition = partition;
      this.topicId = topicId;
      this.firstOffset = firstOffset;
      this.lastOffset = firstOffset - 1;
      this.openedAt = now;
      try {
        // Buffered: a record is several small writes, and the deflater works best on large ones.
        this.out = new BufferedOutputStream(config.gzip() ? new GZIPOutputStream(bytes, 64 * 1024) : bytes, 64 * 1024);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    void append(SinkRecord record) {
      try {
        out.write(new StringBuilder(128)
            .append("{\"topic\":").append(quote(record.topic()))
            .append(",\"partition\":").append(record.kafkaPartition())
            .append(",\"offset\":").append(record.kafkaOffset())
            .append(",\"timestamp\":").append(record.timestamp())
            .append(",\"key\":").toString().getBytes(StandardCharsets.UTF_8));
        writeJson(out, record.topic(), record.keySchema(), record.key());
        out.write(VALUE_FIELD);
        writeJson(out, record.topic(), record.valueSchema(), record.value(), inHeaders(record));
        out.write(LINE_END);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      lastOffset = record.kafkaOffset();
      records++;
    }

    boolean full() {
      return records >= config.maxRecords();
    }

    boolean due(long now) {
      return full() || now - openedAt >= config.rotateIntervalMs();
    }

    /** {@code <prefix>/<topic>/partition=<p>/<topic>+<p>+<first>+<last>+<topic id>.jsonl[.gz]} */
    String key() {
      String name = String.format("%s+%d+%020d+%020d+%s.jsonl%s", partition.topic(), partition.partition(),
          firstOffset, lastOffset, topicId, config.gzip() ? ".gz" : "");
      String folder = partition.topic() + "/partition=" + partition.partition() + "/";
      return config.prefix().isEmpty() ? folder + name : config.prefix() + "/" + folder + name;
    }

    /** The object's bytes; the batch takes no more records once they are built. */
    byte[] body() throws IOException {
      if (finished == null) {
        out.close();
        finished = bytes.toByteArray();
      }
      return finished;
    }
  }

  public S3SinkTask() {
    this(S3SinkConfig::bucket, KafkaTopicIds::new);
  }

  S3SinkTask(Function<S3SinkConfig, ObjectStore> openStore, Function<S3SinkConfig, TopicIds> openTopicIds) {
    this.openStore = openStore;
    this.openTopicIds = openTopicIds;
  }

  @Override
  public String version() {
    return S3SinkConnector.VERSION;
  }

  @Override
  public void start(Map<String, String> properties) {
    config = new S3SinkConfig(properties);
    s3 = openStore.apply(config);
    ids = openTopicIds.apply(config);
    startedAt = System.currentTimeMillis();
    json.configure(Map.of("schemas.enable", "false", "decimal.format", "NUMERIC"), false);
  }

  @Override
  public void open(Collection<TopicPartition> assigned) {
    for (TopicPartition partition : assigned) {
      partitions.put(partition, new PartitionState());
      topicIds.remove(partition.topic()); // a rebalance may follow a topic being deleted and re-created
    }
  }

  @Override
  public void put(Collection<SinkRecord> records) {
    long now = System.currentTimeMillis();
    for (SinkRecord record : records) {
      TopicPartition partition = new TopicPartition(record.topic(), record.kafkaPartition());
      PartitionState state = partitions.computeIfAbsent(partition, p -> new PartitionState());
      long offset = record.kafkaOffset();
      if (state.next >= 0 && offset < state.next) {
        continue; // redelivered: already in the batch or in S3
      }
      if (state.next >= 0 && offset > state.next) {
        LOG.info("S3 sink: {} skips from offset {} to {} (transaction markers or compaction)",
            partition, state.next, offset);
      }
      if (state.batch != null && state.batch.full()) {
        upload(state, now); // throws to have Connect redeliver these records once S3 takes the batch
      }
      if (state.batch == null) {
        state.batch = new Batch(partition, topicId(partition.topic()), offset, now);
      }
      state.batch.append(record);
      state.next = offset + 1;
    }
    uploadDue(now);
  }

  @Override
  public Map<TopicPartition, OffsetAndMetadata> preCommit(Map<TopicPartition, OffsetAndMetadata> current) {
    try {
      uploadDue(System.currentTimeMillis());
    } catch (RetriableException e) {
      // logged; the batch stays and its offsets stay uncommitted
    }
    Map<TopicPartition, OffsetAndMetadata> safe = new HashMap<>();
    for (TopicPartition partition : current.keySet()) {
      PartitionState state = partitions.get(partition);
      if (state != null && state.written >= 0) {
        safe.put(partition, new OffsetAndMetadata(state.written + 1));
      }
    }
    return safe;
  }

  @Override
  public void close(Collection<TopicPartition> revoked) {
    // Records not yet uploaded are not committed either; the next owner reads them again.
    for (TopicPartition partition : revoked) {
      partitions.remove(partition);
    }
  }

  @Override
  public void stop() {
    partitions.clear();
    if (ids != null) {
      ids.close();
    }
    if (s3 != null) {
      s3.close();
    }
  }

  /** Upload every batch that is full or old enough; the first transient failure stops the round. */
  private void uploadDue(long now) {
    for (PartitionState state : partitions.values()) {
      if (state.batch != null && state.batch.due(now)) {
        upload(state, now);
      }
    }
  }

  private String topicId(String topic) {
    String id = topicIds.get(topic);
    if (id != null) {
      return id;
    }
    try {
      id = ids.of(topic);
    } catch (Exception e) {
      context.timeout(config.retryBackoffMs());
      throw new RetriableException("S3 sink: cannot read the id of topic " + topic + " from Kafka (it names "
          + "every object, so that a new cluster never overwrites an old one's); will retry: " + e, e);
    }
    topicIds.put(topic, id);
    return id;
  }

  /**
   * Upload the partition's batch. On a transient failure the batch is kept, Connect is asked to
   * redeliver after a backoff, and a RetriableException says so; nothing is committed past it.
   */
  private void upload(PartitionState state, long now) {
    Batch batch = state.batch;
    if (failures > 0 && now < retryAt) {
      context.timeout(retryAt - now);
      throw new RetriableException("S3 sink: waiting " + (retryAt - now) + " ms before retrying the upload of "
          + batch.key());
    }
    String key = batch.key();
    try {
      boolean created = s3.putIfAbsent(key, batch.body(), config.gzip() ? "application/gzip" : "application/x-ndjson");
      if (!created) {
        // The same key holds the same records: an earlier attempt got through before a crash or a timeout.
        LOG.info("S3 sink: s3://{}/{} is already there; not written again", config.bucketName(), key);
      }
    } catch (Bucket.UploadException e) {
      boolean propagating = e.status == 403 && now - startedAt < IAM_PROPAGATION_MS;
      if (!e.transient_ && !propagating) {
        throw new ConnectException("S3 sink: upload of s3://" + config.bucketName() + "/" + key + " was refused: "
            + e.getMessage() + ". Check the sink's credentials, its IAM policy (it may write under '"
            + config.prefix() + "/' only) and that the bucket exists in " + config.region() + ". Nothing "
            + "after offset " + state.written + " of " + batch.partition + " is committed: restart the task "
            + "once fixed and it goes on from there.", e);
      }
      throw retryLater(batch, key, now, e);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    if (failingSince >= 0) {
      LOG.info("S3 sink: S3 takes uploads again after {} s and {} failed attempts",
          (now - failingSince) / 1000, failures);
    }
    failingSince = -1;
    failures = 0;
    state.written = batch.lastOffset;
    state.batch = null;
    LOG.debug("Uploaded {} records to s3://{}/{}", batch.records, config.bucketName(), key);
  }

  private RetriableException retryLater(Batch batch, String key, long now, Bucket.UploadException e) {
    if (failingSince < 0) {
      failingSince = now;
    }
    failures++;
    long backoff = Math.min(MAX_BACKOFF_MS, config.retryBackoffMs() << Math.min(failures - 1, 16));
    retryAt = now + backoff;
    context.timeout(backoff);
    long outage = now - failingSince;
    String message = "S3 sink: upload of s3://" + config.bucketName() + "/" + key + " failed (" + e.getMessage()
        + "); attempt " + failures + ", S3 failing for " + outage / 1000 + " s, retrying in " + backoff
        + " ms. The records wait in Kafka: nothing after them is committed.";
    if (outage >= config.outageWarnMs()) {
      LOG.error("{} S3 has been unreachable for longer than {} s: check the bucket, the network path to S3 "
          + "and the sink's credentials.", message, config.outageWarnMs() / 1000);
    } else {
      LOG.warn(message);
    }
    return new RetriableException(message, e);
  }

  /**
   * A key or value as JSON. Bytes (the ByteArrayConverter the stack configures with serialization
   * json) are the record's own JSON as the source's JsonConverter wrote it, written as they are: no
   * parse and no second serialization. A typed record (the Avro converter, with serialization avro)
   * is written with its types kept (TypedJson). Anything else goes through JsonConverter.
   */
  private void writeJson(OutputStream out, String topic, Schema schema, Object value) throws IOException {
    writeJson(out, topic, schema, value, Map.of());
  }

  private void writeJson(OutputStream out, String topic, Schema schema, Object value, Map<String, String> inHeaders)
      throws IOException {
    if (value == null) {
      out.write(NULL);
    } else if (value instanceof byte[] raw) {
      requireJson(topic, raw);
      out.write(inHeaders.isEmpty() ? raw : withValues(topic, raw, inHeaders));
    } else if (schema != null) {
      try (JsonGenerator generator = JSON_FACTORY.createGenerator(out)) {
        TypedJson.write(generator, schema, value, inHeaders, null);
      }
    } else {
      out.write(json.fromConnectData(topic, schema, value));
    }
  }

  /**
   * The values the source carried in headers (its NonFiniteNumerics) rather than in the record, by
   * field path ({@code after.ratio}), each as the JSON that stands there: a numeric's NaN or
   * ±Infinity as its word in a string ({@code "NaN"}), an array as it came.
   */
  static Map<String, String> inHeaders(SinkRecord record) {
    Map<String, String> found = Map.of();
    for (Header header : record.headers()) {
      boolean nonFinite = header.key().startsWith(NON_FINITE_HEADER);
      if (nonFinite || header.key().startsWith(ARRAY_HEADER)) {
        if (found.isEmpty()) {
          found = new HashMap<>();
        }
        // String.valueOf: a header converter other than the sink's StringConverter may have read "NaN" as a double.
        String text = String.valueOf(header.value());
        if (nonFinite) {
          found.put(header.key().substring(NON_FINITE_HEADER.length()), quote(text));
        } else {
          requireJson(record.topic(), text.getBytes(StandardCharsets.UTF_8));
          found.put(header.key().substring(ARRAY_HEADER.length()), text);
        }
      }
    }
    return found;
  }

  /**
   * A record's JSON as the source wrote it, with the values its headers carry put in their places
   * ({@code after.grid}: the field grid of the top-level object after). Copied token by token, numbers
   * as their text, so that nothing else changes.
   */
  private static byte[] withValues(String topic, byte[] raw, Map<String, String> inHeaders) throws IOException {
    ByteArrayOutputStream rewritten = new ByteArrayOutputStream(raw.length + 64);
    int placed = 0;
    try (JsonParser in = JSON_FACTORY.createParser(raw); JsonGenerator out = JSON_FACTORY.createGenerator(rewritten)) {
      String image = null;
      for (JsonToken token = in.nextToken(); token != null; token = in.nextToken()) {
        if (token == JsonToken.FIELD_NAME && in.getParsingContext().getParent().inRoot()) {
          image = in.currentName();
        } else if (token == JsonToken.FIELD_NAME && in.getParsingContext().getParent().getParent() != null
            && in.getParsingContext().getParent().getParent().inRoot()
            && inHeaders.containsKey(image + "." + in.currentName())) {
          String column = in.currentName();
          out.writeFieldName(column);
          in.nextToken();
          in.skipChildren();
          out.writeRawValue(inHeaders.get(image + "." + column));
          placed++;
          continue;
        }
        if (token == JsonToken.VALUE_NUMBER_INT || token == JsonToken.VALUE_NUMBER_FLOAT) {
          out.writeNumber(in.getText());
        } else {
          out.copyCurrentEvent(in);
        }
      }
    }
    if (placed != inHeaders.size()) {
      throw new DataException("a record in " + topic + " has headers for " + inHeaders.keySet()
          + ", not all of which its JSON holds: is the source's value converter JsonConverter without schemas?");
    }
    return rewritten.toByteArray();
  }

  /**
   * Refuses bytes that are not exactly one JSON value, as JsonConverter would: the line they would
   * make would not be JSON. Tokenizes without building anything.
   */
  private static void requireJson(String topic, byte[] raw) {
    try (JsonParser parser = JSON_FACTORY.createParser(raw)) {
      if (parser.nextToken() == null) {
        throw new DataException("an empty record in " + topic + " is not JSON");
      }
      parser.skipChildren();
      if (parser.nextToken() != null) {
        throw new DataException("a record in " + topic + " holds more than one JSON value");
      }
    } catch (IOException e) {
      throw new DataException("a record in " + topic + " is not JSON: " + e.getMessage(), e);
    }
  }

  private static String quote(String text) {
    StringBuilder out = new StringBuilder(text.length() + 2).append('"');
    for (char c : text.toCharArray()) {
      if (c == '"' || c == '\\') {
        out.append('\\').append(c);
      } else if (c < 0x20) {
        out.append(String.format("\\u%04x", (int) c));
      } else {
        out.append(c);
      }
    }
    return out.append('"').toString();
  }
}
