package dataingestion.connect.s3;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.metrics.PluginMetrics;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.SchemaBuilder;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.errors.ConnectException;
import org.apache.kafka.connect.errors.RetriableException;
import org.apache.kafka.connect.sink.SinkRecord;
import org.apache.kafka.connect.sink.SinkTaskContext;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class S3SinkTaskTest {
  private static final String TOPIC = "cdc.inventory.customers";
  private static final String TOPIC_ID = "AAAAAAAAAAAAAAAAAAAAAA";
  private static final Schema KEY = SchemaBuilder.struct().name("Key").field("id", Schema.INT32_SCHEMA).build();

  /** A bucket that keeps what it is given and answers as told: S3's status codes, or an I/O failure. */
  static final class Store implements S3SinkTask.ObjectStore {
    final Map<String, byte[]> objects = new LinkedHashMap<>();
    final List<String> attempts = new ArrayList<>();
    final Deque<Integer> failures = new ArrayDeque<>(); // status of each next attempt; 0: S3 not reached

    @Override
    public boolean putIfAbsent(String key, byte[] body, String contentType) throws Bucket.UploadException {
      attempts.add(key);
      Integer status = failures.poll();
      if (status != null) {
        boolean retry = status == 0 || Bucket.isTransient(status); // 0: S3 not reached
        throw new Bucket.UploadException("S3 answered " + status, retry, status, null);
      }
      return objects.putIfAbsent(key, body.clone()) == null;
    }

    @Override
    public void close() {}
  }

  static final class Context implements SinkTaskContext {
    final List<Long> timeouts = new ArrayList<>();

    @Override public Map<String, String> configs() { return Map.of(); }
    @Override public void offset(Map<TopicPartition, Long> offsets) {}
    @Override public void offset(TopicPartition partition, long offset) {}
    @Override public void timeout(long ms) { timeouts.add(ms); }
    @Override public Set<TopicPartition> assignment() { return Set.of(); }
    @Override public void pause(TopicPartition... partitions) {}
    @Override public void resume(TopicPartition... partitions) {}
    @Override public void requestCommit() {}
    @Override public PluginMetrics pluginMetrics() { return null; }
  }

  private final Store store = new Store();
  private final Context context = new Context();
  private final Map<String, String> settings = new HashMap<>(Map.of(
      "s3.bucket", "archive", "s3.region", "eu-west-1", "s3.prefix", "cdc-archive",
      "aws.access.key.id", "id", "aws.secret.access.key", "secret", "kafka.bootstrap.servers", "kafka:9092",
      "file.compression", "none", "file.max.records", "3", "s3.retry.backoff.ms", "0"));
  private S3SinkTask task;

  @BeforeEach
  void setUp() {
    task = new S3SinkTask(config -> store, config -> new S3SinkTask.TopicIds() {
      @Override public String of(String topic) { return TOPIC_ID; }
      @Override public void close() {}
    });
    task.initialize(context);
  }

  private void start() {
    task.start(settings);
    task.open(List.of(partition(0), partition(1)));
  }

  private static TopicPartition partition(int p) {
    return new TopicPartition(TOPIC, p);
  }

  private static SinkRecord record(int partition, long offset) {
    Struct key = new Struct(KEY).put("id", (int) offset);
    return new SinkRecord(TOPIC, partition, KEY, key, Schema.STRING_SCHEMA, "row " + offset, offset);
  }

  private static List<SinkRecord> records(int partition, long from, long to) {
    List<SinkRecord> out = new ArrayList<>();
    for (long offset = from; offset <= to; offset++) {
      out.add(record(partition, offset));
    }
    return out;
  }

  private static String key(int partition, long first, long last) {
    return String.format("cdc-archive/%s/partition=%d/%s+%d+%020d+%020d+%s.jsonl", TOPIC, partition, TOPIC,
        partition, first, last, TOPIC_ID);
  }

  private Map<TopicPartition, OffsetAndMetadata> commit() {
    Map<TopicPartition, OffsetAndMetadata> current = new HashMap<>();
    current.put(partition(0), new OffsetAndMetadata(1000));
    current.put(partition(1), new OffsetAndMetadata(1000));
    return task.preCommit(current);
  }

  @Test
  void fullBatchesAreObjectsNamedByTheirPartitionAndOffsets() {
    start();
    task.put(records(0, 0, 6));
    task.put(records(1, 10, 11));

    assertEquals(List.of(key(0, 0, 2), key(0, 3, 5)), List.copyOf(store.objects.keySet()));
    String lines = new String(store.objects.get(key(0, 3, 5)), StandardCharsets.UTF_8);
    assertEquals("{\"topic\":\"cdc.inventory.customers\",\"partition\":0,\"offset\":3,\"timestamp\":null,"
        + "\"key\":{\"id\":3},\"value\":\"row 3\"}\n", lines.lines().findFirst().orElseThrow() + "\n");
    assertEquals(3, lines.split("\n").length);
    // Committed: up to the last record in S3, nothing of partition 1 (its batch is not full).
    assertEquals(Map.of(partition(0), new OffsetAndMetadata(6)), commit());
  }

  @Test
  void anOldBatchIsWrittenAtTheNextCommit() throws InterruptedException {
    settings.put("file.rotate.interval.ms", "1");
    start();
    task.put(records(1, 10, 11));
    Thread.sleep(5);

    assertEquals(Map.of(partition(1), new OffsetAndMetadata(12)), commit());
    assertEquals(List.of(key(1, 10, 11)), List.copyOf(store.objects.keySet()));
  }

  @Test
  void aFailedUploadKeepsItsBatchAndWritesTheSameRecordsAgain() {
    start();
    store.failures.addAll(List.of(503, 503));
    List<SinkRecord> batch = records(0, 0, 3);

    assertThrows(RetriableException.class, () -> task.put(batch));
    assertEquals(List.of(0L), context.timeouts);
    // A commit tries the upload again; while S3 fails, nothing is committed.
    assertEquals(Map.of(), commit());
    assertTrue(store.objects.isEmpty());

    // Connect redelivers from the last commit: the records the task holds are not taken twice.
    task.put(batch);
    assertEquals(List.of(key(0, 0, 2), key(0, 0, 2), key(0, 0, 2)), store.attempts);
    assertEquals(List.of(key(0, 0, 2)), List.copyOf(store.objects.keySet()));
    assertEquals(3, new String(store.objects.get(key(0, 0, 2)), StandardCharsets.UTF_8).split("\n").length);
    assertEquals(Map.of(partition(0), new OffsetAndMetadata(3)), commit());
  }

  @Test
  void theBackoffDoublesWhileS3FailsAndARedeliveryWaitsItOut() throws InterruptedException {
    settings.put("s3.retry.backoff.ms", "50");
    start();
    store.failures.addAll(List.of(0, 0));

    assertThrows(RetriableException.class, () -> task.put(records(0, 0, 3)));
    Thread.sleep(60);
    assertThrows(RetriableException.class, () -> task.put(records(0, 0, 3)));
    assertEquals(List.of(50L, 100L), context.timeouts);
    // Redelivered before the backoff is over: no attempt, only the wait that is left.
    RetriableException waiting = assertThrows(RetriableException.class, () -> task.put(records(0, 0, 3)));
    assertTrue(waiting.getMessage().contains("waiting"), waiting.getMessage());
    assertEquals(2, store.attempts.size());
    assertTrue(context.timeouts.get(2) <= 100L);
    Thread.sleep(110);
    task.put(records(0, 0, 3));
    assertEquals(Map.of(partition(0), new OffsetAndMetadata(3)), commit());
  }

  @Test
  void aKeyAlreadyTakenIsAlreadyArchived() {
    start();
    store.objects.put(key(0, 0, 2), "written before a crash".getBytes(StandardCharsets.UTF_8));

    task.put(records(0, 0, 3));

    assertEquals("written before a crash", new String(store.objects.get(key(0, 0, 2)), StandardCharsets.UTF_8));
    assertEquals(Map.of(partition(0), new OffsetAndMetadata(3)), commit());
  }

  @Test
  void aRefusalStopsTheTaskAndSaysWhatToCheck() {
    start();
    store.failures.add(404);

    ConnectException refused = assertThrows(ConnectException.class, () -> task.put(records(0, 0, 3)));
    assertFalse(refused instanceof RetriableException);
    assertTrue(refused.getMessage().contains("s3://archive/" + key(0, 0, 2)), refused.getMessage());
    assertTrue(refused.getMessage().contains("eu-west-1"), refused.getMessage());
    assertInstanceOf(Bucket.UploadException.class, refused.getCause());
    assertTrue(store.objects.isEmpty());
  }

  @Test
  void aForbiddenUploadRightAfterStartIsRetriedWhileTheKeyPropagates() {
    start();
    store.failures.add(403);

    assertThrows(RetriableException.class, () -> task.put(records(0, 0, 3)));
    task.put(records(0, 0, 3));
    assertEquals(Map.of(partition(0), new OffsetAndMetadata(3)), commit());
  }

  @Test
  void gzipObjectsHoldTheSameLines() throws Exception {
    settings.put("file.compression", "gzip");
    start();
    task.put(records(0, 0, 3));

    String name = key(0, 0, 2) + ".gz";
    byte[] body = store.objects.get(name);
    try (var in = new java.util.zip.GZIPInputStream(new java.io.ByteArrayInputStream(body))) {
      String lines = new String(in.readAllBytes(), StandardCharsets.UTF_8);
      assertEquals(3, lines.split("\n").length);
      assertTrue(lines.startsWith("{\"topic\":\"" + TOPIC + "\",\"partition\":0,\"offset\":0,"), lines);
    }
    assertArrayEquals(new byte[] {0x1f, (byte) 0x8b}, java.util.Arrays.copyOf(body, 2));
  }

  /** A change whose after-image holds a decimal's NaN and an array its list cannot hold only in the headers, as the source sends them. */
  private static SinkRecord withHeaders(Schema valueSchema, Object value) {
    SinkRecord record = new SinkRecord(TOPIC, 0, KEY, new Struct(KEY).put("id", 1), valueSchema, value, 0);
    record.headers().addString(S3SinkTask.NON_FINITE_HEADER + "after.price", "NaN");
    record.headers().addString(S3SinkTask.ARRAY_HEADER + "after.grid", "[[1,2],[null,\"a\\\"b\"]]");
    return record;
  }

  private String onlyLine() {
    String lines = new String(store.objects.values().iterator().next(), StandardCharsets.UTF_8);
    assertEquals(1, lines.split("\n").length, lines);
    return lines;
  }

  @Test
  void aTypedRecordGetsTheValuesItsHeadersCarryInTheirPlaces() {
    settings.put("file.max.records", "1");
    start();
    Schema row = SchemaBuilder.struct().name("Value").optional()
        .field("price", org.apache.kafka.connect.data.Decimal.builder(2).optional().build())
        .field("grid", SchemaBuilder.array(Schema.OPTIONAL_INT32_SCHEMA).optional().build())
        .field("tags", SchemaBuilder.array(Schema.OPTIONAL_STRING_SCHEMA).optional().build())
        .build();
    Schema envelope = SchemaBuilder.struct().name("Envelope").field("after", row).build();
    Struct after = new Struct(row).put("tags", List.of("x"));
    task.put(List.of(withHeaders(envelope, new Struct(envelope).put("after", after))));

    String line = onlyLine();
    assertTrue(line.contains("\"value\":{\"after\":{\"price\":\"NaN\",\"grid\":[[1,2],[null,\"a\\\"b\"]],\"tags\":[\"x\"]}}"),
        line);
  }

  @Test
  void aRecordsOwnJsonGetsTheNestedArrayItsHeaderCarries() {
    settings.put("file.max.records", "1");
    start();
    byte[] json = "{\"after\":{\"price\":\"NaN\",\"grid\":null,\"ratio\":1.10},\"op\":\"c\"}".getBytes(StandardCharsets.UTF_8);
    task.put(List.of(withHeaders(null, json)));

    String line = onlyLine();
    assertTrue(line.contains("\"value\":{\"after\":{\"price\":\"NaN\",\"grid\":[[1,2],[null,\"a\\\"b\"]],\"ratio\":1.10},\"op\":\"c\"}"),
        line);
  }

  @Test
  void aNestedHeaderThatIsNotJsonStopsTheTask() {
    start();
    SinkRecord record = new SinkRecord(TOPIC, 0, KEY, new Struct(KEY).put("id", 1), null,
        "{\"after\":{\"grid\":null}}".getBytes(StandardCharsets.UTF_8), 0);
    record.headers().addString(S3SinkTask.ARRAY_HEADER + "after.grid", "[[1,2]");
    assertThrows(org.apache.kafka.connect.errors.DataException.class, () -> task.put(List.of(record)));
  }
}
