package dataingestion.connect.guard;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.connect.source.SourceRecord;
import org.apache.kafka.connect.source.SourceTask;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The guard's one task: a round every {@code check.interval.ms}, and no record ever. */
public final class BufferGuardTask extends SourceTask {
  private static final Logger LOG = LoggerFactory.getLogger(BufferGuardTask.class);
  /** The broker's retention check (10 s) and segment delete delay (5 s), with a margin. */
  private static final long FREED_SEGMENTS_GONE_MS = 20_000;
  /** Long enough to even out the source's batches, short enough to follow a load that changes. */
  private static final long RATE_WINDOW_MS = 20_000;
  private Map<String, Object> settings;
  private Pattern topics;
  private Admin admin;
  private KafkaProducer<String, String> reports;
  private HttpClient http;
  private long nextRound;
  private boolean stoppedByUs;
  private boolean started;
  private boolean freeing;
  private long lastAt;
  private long lastFreedAt;
  private Map<TopicPartition, Offsets> lastOffsets = Map.of();
  private Map<Integer, Map<TopicPartition, Long>> lastSizes = Map.of();
  /** What a record of each change partition takes on disk: tables' rows differ in width a hundredfold. */
  private final Map<TopicPartition, Double> recordBytes = new HashMap<>();
  private final ArrayDeque<Growth> growth = new ArrayDeque<>();
  private double bytesPerSecond = -1;

  @Override
  public void start(Map<String, String> properties) {
    settings = BufferGuard.DEFINITION.parse(properties);
    topics = Pattern.compile((String) settings.get(BufferGuard.TOPICS));
    Properties client = new Properties();
    client.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, settings.get(BufferGuard.BOOTSTRAP));
    client.put(AdminClientConfig.CLIENT_ID_CONFIG, "buffer-guard");
    admin = Admin.create(client);
    Properties producer = new Properties();
    producer.putAll(client);
    producer.put(ProducerConfig.ACKS_CONFIG, "all");
    producer.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
    producer.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    producer.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    reports = new KafkaProducer<>(producer);
    http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
    nextRound = System.currentTimeMillis();
  }

  /** A round when it is due; the guard never hands Connect a record. */
  @Override
  public List<SourceRecord> poll() throws InterruptedException {
    long wait = nextRound - System.currentTimeMillis();
    if (wait > 0) {
      Thread.sleep(Math.min(wait, 1000));  // short sleeps: Connect stops a task between polls
      return null;
    }
    nextRound = System.currentTimeMillis() + (Long) settings.get(BufferGuard.INTERVAL);
    round();
    return null;
  }

  @Override
  public void stop() {
    if (reports != null) {
      reports.close(Duration.ofSeconds(5));
    }
    if (admin != null) {
      admin.close(Duration.ofSeconds(5));
    }
  }

  @Override
  public String version() {
    return BufferGuard.VERSION;
  }

  /** A change partition's first and end offsets, and the sink's committed one (null before its first). */
  record Offsets(long first, long end, Long committed) { }

  /** One broker's log volume as the guard sees it, with the size of each change partition's replica. */
  record Volume(int broker, long used, long changeBytes, long unarchived, Map<TopicPartition, Long> changeSizes) { }

  private void round() {
    try {
      look();
    } catch (InterruptedException interrupted) {
      Thread.currentThread().interrupt();
    } catch (Exception failure) {
      // A broker restarting or a slow answer: the next round looks again.
      LOG.warn("Buffer guard: this round failed ({}); looking again in {} ms. While it fails, nothing stops the "
          + "source before a Kafka volume fills: check the brokers and this worker's REST API.",
          failure.toString(), settings.get(BufferGuard.INTERVAL));
    }
  }

  private void look() throws Exception {
    long capacity = (Long) settings.get(BufferGuard.CAPACITY);
    if (!started) {
      createReportTopic((String) settings.get(BufferGuard.REPORT_TOPIC));
      stoppedByUs = stoppedEarlier();
      started = true;
    }
    List<Integer> brokers = new ArrayList<>();
    admin.describeCluster().nodes().get(30, TimeUnit.SECONDS).forEach(node -> brokers.add(node.id()));
    Map<Integer, Map<String, LogDirDescription>> dirs =
        admin.describeLogDirs(brokers).allDescriptions().get(30, TimeUnit.SECONDS);
    Map<TopicPartition, Offsets> offsets = offsets(dirs);
    List<Volume> volumes = new ArrayList<>();
    for (Map.Entry<Integer, Map<String, LogDirDescription>> broker : dirs.entrySet()) {
      volumes.add(volume(broker.getKey(), broker.getValue(), capacity, offsets));
    }
    Volume fullest = volumes.stream().max((a, b) -> Long.compare(a.used(), b.used())).orElse(null);
    if (fullest == null) {
      return;
    }
    rate(volumes, offsets);
    double share = (double) fullest.used() / capacity;
    // A source the guard stopped waits for resume.at, below free.at: only freeing gets it there.
    if (share >= (Double) settings.get(BufferGuard.FREE_AT)
        || stoppedByUs && share >= (Double) settings.get(BufferGuard.RESUME_AT)) {
      freeArchived(offsets, fullest, share);
    } else {
      freeing = false;
    }
    if (!stoppedByUs && share >= (Double) settings.get(BufferGuard.STOP_AT)) {
      rest("stop");
      stoppedByUs = true;
      LOG.warn("Buffer guard: broker {}'s log volume is {} full ({} of {}), {} of it not archived yet: the source "
          + "{} is STOPPED so that no broker's disk fills. The changes wait in PostgreSQL's WAL for the replication "
          + "slot (up to max_slot_wal_keep_size; make status says how long that lasts). Bring the archive back "
          + "(S3, the sink connector); the guard resumes the source below {}.", fullest.broker(), percent(share),
          size(fullest.used()), size(capacity), size(fullest.unarchived()), settings.get(BufferGuard.CONNECTOR),
          percent((Double) settings.get(BufferGuard.RESUME_AT)));
    } else if (stoppedByUs && share < (Double) settings.get(BufferGuard.RESUME_AT)) {
      rest("resume");
      stoppedByUs = false;
      LOG.info("Buffer guard: the fullest log volume is down to {}: the source {} is resumed.", percent(share),
          settings.get(BufferGuard.CONNECTOR));
    }
    report(volumes, capacity);
  }

  /** Each change partition's first, end and committed offsets. */
  private Map<TopicPartition, Offsets> offsets(Map<Integer, Map<String, LogDirDescription>> dirs) throws Exception {
    Map<TopicPartition, OffsetSpec> earliest = new HashMap<>();
    for (Map<String, LogDirDescription> broker : dirs.values()) {
      for (LogDirDescription dir : broker.values()) {
        for (TopicPartition partition : dir.replicaInfos().keySet()) {
          if (topics.matcher(partition.topic()).matches()) {
            earliest.put(partition, OffsetSpec.earliest());
          }
        }
      }
    }
    Map<TopicPartition, Offsets> found = new HashMap<>();
    if (earliest.isEmpty()) {
      return found;
    }
    Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
    earliest.keySet().forEach(partition -> latest.put(partition, OffsetSpec.latest()));
    var first = admin.listOffsets(earliest).all().get(30, TimeUnit.SECONDS);
    var end = admin.listOffsets(latest).all().get(30, TimeUnit.SECONDS);
    Map<TopicPartition, OffsetAndMetadata> committed = admin.listConsumerGroupOffsets((String) settings.get(BufferGuard.GROUP))
        .partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
    for (TopicPartition partition : earliest.keySet()) {
      OffsetAndMetadata archived = committed.get(partition);
      found.put(partition, new Offsets(first.get(partition).offset(), end.get(partition).offset(),
          archived == null ? null : archived.offset()));
    }
    return found;
  }

  /**
   * What a broker's volume holds. Where the log directory is a filesystem of the volume's own size, its
   * use is the filesystem's; where it shares a larger disk (a kind node's local path, which does not
   * enforce a claim's size), it is what the replicas take, against the declared size.
   */
  static Volume volume(int broker, Map<String, LogDirDescription> dirs, long capacity,
      Map<TopicPartition, Offsets> offsets) {
    long replicas = 0;
    long filesystem = 0;
    long changeBytes = 0;
    long unarchived = 0;
    Map<TopicPartition, Long> changeSizes = new HashMap<>();
    for (LogDirDescription dir : dirs.values()) {
      if (dir.totalBytes().isPresent() && dir.usableBytes().isPresent()
          && dir.totalBytes().getAsLong() <= capacity + capacity / 10) {
        filesystem += dir.totalBytes().getAsLong() - dir.usableBytes().getAsLong();
      }
      for (Map.Entry<TopicPartition, ReplicaInfo> replica : dir.replicaInfos().entrySet()) {
        long size = replica.getValue().size();
        replicas += size;
        Offsets offset = offsets.get(replica.getKey());
        if (offset != null) {
          changeBytes += size;
          unarchived += unarchivedShare(size, offset);
          changeSizes.put(replica.getKey(), size);
        }
      }
    }
    return new Volume(broker, Math.max(replicas, filesystem), changeBytes, unarchived, changeSizes);
  }

  /** The bytes of a partition above the sink's committed offset, by the share of its records there. */
  static long unarchivedShare(long size, Offsets offset) {
    if (offset.end() <= offset.first()) {
      return 0;
    }
    long from = offset.committed() == null ? offset.first()
        : Math.max(offset.first(), Math.min(offset.end(), offset.committed()));
    return Math.round((double) size * (offset.end() - from) / (offset.end() - offset.first()));
  }

  /**
   * How fast the change topics grow on the busiest volume, over the last RATE_WINDOW_MS: per
   * partition, records appended (end offsets, which deleting archived records does not move) times
   * what a record of that partition takes. A window, not a running average: a load that began a
   * window ago counts in full, which is what a prediction from "the current rate" promises.
   */
  private void rate(List<Volume> volumes, Map<TopicPartition, Offsets> offsets) {
    long now = System.currentTimeMillis();
    Map<Integer, Double> appended = new HashMap<>();
    Map<Integer, Map<TopicPartition, Long>> sizes = new HashMap<>();
    for (Volume volume : volumes) {
      sizes.put(volume.broker(), volume.changeSizes());
      Map<TopicPartition, Long> before = lastSizes.getOrDefault(volume.broker(), Map.of());
      double bytes = 0;
      for (Map.Entry<TopicPartition, Long> replica : volume.changeSizes().entrySet()) {
        TopicPartition partition = replica.getKey();
        Offsets previous = lastOffsets.get(partition);
        learnRecordBytes(partition, offsets.get(partition), previous, replica.getValue(), before.get(partition), now);
        if (previous != null) {
          bytes += Math.max(0, offsets.get(partition).end() - previous.end()) * recordBytes.getOrDefault(partition, 0.0);
        }
      }
      appended.put(volume.broker(), bytes);
    }
    if (!lastOffsets.isEmpty() && now > lastAt) {
      growth.addLast(new Growth(lastAt, now, appended));
    }
    while (!growth.isEmpty() && growth.peekFirst().from() < now - RATE_WINDOW_MS) {
      growth.removeFirst();
    }
    bytesPerSecond = growth.isEmpty() ? -1 : Growth.fastest(growth);
    lastOffsets = offsets;
    lastSizes = sizes;
    lastAt = now;
  }

  /** What each broker's change partitions grew by between two looks. */
  record Growth(long from, long to, Map<Integer, Double> bytes) {
    /** The busiest broker's bytes per second over the looks given. */
    static double fastest(Iterable<Growth> looks) {
      Map<Integer, Double> total = new HashMap<>();
      long first = Long.MAX_VALUE;
      long last = 0;
      for (Growth look : looks) {
        look.bytes().forEach((broker, bytes) -> total.merge(broker, bytes, Double::sum));
        first = Math.min(first, look.from());
        last = Math.max(last, look.to());
      }
      double busiest = total.values().stream().mapToDouble(Double::doubleValue).max().orElse(0);
      return last > first ? busiest * 1000.0 / (last - first) : 0;
    }
  }

  /**
   * A record's size from what a replica grew by between two looks. Not from its size over its
   * records: after a deletion the oldest segment still holds the deleted records until it goes, which
   * would make a few remaining records look megabytes wide. A look during which segments may have
   * gone (the log's start moved, or records were deleted within the last 20 s) teaches nothing.
   */
  private void learnRecordBytes(TopicPartition partition, Offsets now, Offsets before, long size, Long sizeBefore,
      long at) {
    boolean quiet = before != null && sizeBefore != null && now.first() == before.first()
        && at - lastFreedAt > FREED_SEGMENTS_GONE_MS;
    long records = before == null ? 0 : now.end() - before.end();
    if (quiet && records > 0 && size > sizeBefore) {
      double sample = (double) (size - sizeBefore) / records;
      recordBytes.merge(partition, sample, (known, fresh) -> known + 0.2 * (fresh - known));
    } else if (!recordBytes.containsKey(partition) && now.end() > now.first() && now.first() == 0) {
      recordBytes.put(partition, (double) size / (now.end() - now.first()));  // a first guess from a whole log
    }
  }

  private void freeArchived(Map<TopicPartition, Offsets> offsets, Volume fullest, double share) throws Exception {
    Map<TopicPartition, RecordsToDelete> archived = new HashMap<>();
    offsets.forEach((partition, offset) -> {
      if (offset.committed() != null && offset.committed() > offset.first()) {
        archived.put(partition, RecordsToDelete.beforeOffset(Math.min(offset.committed(), offset.end())));
      }
    });
    if (!freeing) {
      LOG.info("Buffer guard: broker {}'s log volume is {} full; deleting change records the archive already "
          + "holds ({} partitions), oldest first.", fullest.broker(), percent(share), archived.size());
      freeing = true;
    }
    if (!archived.isEmpty()) {
      admin.deleteRecords(archived).all().get(30, TimeUnit.SECONDS);
      lastFreedAt = System.currentTimeMillis();
    }
  }

  private void rest(String action) throws Exception {
    String url = settings.get(BufferGuard.REST_URL) + "/connectors/" + settings.get(BufferGuard.CONNECTOR) + "/" + action;
    HttpRequest request = authorized(HttpRequest.newBuilder(URI.create(url)))
        .PUT(HttpRequest.BodyPublishers.noBody()).build();
    HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
    if (response.statusCode() / 100 != 2) {
      throw new IllegalStateException("Connect's REST API answered " + response.statusCode() + " to " + action
          + " of " + settings.get(BufferGuard.CONNECTOR) + ": " + response.body());
    }
  }

  private HttpRequest.Builder authorized(HttpRequest.Builder request) throws java.io.IOException {
    request.timeout(Duration.ofSeconds(30));
    String authorization = (String) settings.get(BufferGuard.REST_AUTHORIZATION);
    if (!authorization.isEmpty() && Files.exists(Path.of(authorization))) {
      request.header("Authorization", Files.readString(Path.of(authorization), StandardCharsets.UTF_8).strip());
    }
    return request;
  }

  private void report(List<Volume> volumes, long capacity) throws Exception {
    String topic = (String) settings.get(BufferGuard.REPORT_TOPIC);
    StringBuilder json = new StringBuilder(256).append("{\"at_ms\":").append(System.currentTimeMillis())
        .append(",\"capacity\":").append(capacity)
        .append(",\"free_at\":").append(settings.get(BufferGuard.FREE_AT))
        .append(",\"stop_at\":").append(settings.get(BufferGuard.STOP_AT))
        .append(",\"resume_at\":").append(settings.get(BufferGuard.RESUME_AT))
        .append(",\"stopped\":").append(stoppedByUs)
        .append(",\"change_bytes_per_second\":").append(Math.max(0, Math.round(bytesPerSecond)))
        .append(",\"brokers\":[");
    for (int i = 0; i < volumes.size(); i++) {
      Volume volume = volumes.get(i);
      json.append(i == 0 ? "" : ",").append("{\"id\":").append(volume.broker())
          .append(",\"used\":").append(volume.used())
          .append(",\"change_bytes\":").append(volume.changeBytes())
          .append(",\"unarchived\":").append(volume.unarchived()).append('}');
    }
    json.append("]}");
    reports.send(new ProducerRecord<>(topic, BufferGuard.REPORT_KEY, json.toString())).get(30, TimeUnit.SECONDS);
  }

  /**
   * Whether the source was stopped by an earlier guard task (the worker restarted while the guard held
   * it): then this one resumes it in turn. A source a person stopped stays stopped.
   */
  private boolean stoppedEarlier() throws Exception {
    String url = settings.get(BufferGuard.REST_URL) + "/connectors/" + settings.get(BufferGuard.CONNECTOR) + "/status";
    HttpResponse<String> status = http.send(authorized(HttpRequest.newBuilder(URI.create(url))).GET().build(),
        HttpResponse.BodyHandlers.ofString());
    if (status.statusCode() != 200 || !status.body().replace(" ", "").contains("\"connector\":{\"state\":\"STOPPED\"")) {
      return false;
    }
    Properties properties = new Properties();
    properties.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, settings.get(BufferGuard.BOOTSTRAP));
    properties.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    properties.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(properties)) {
      TopicPartition report = new TopicPartition((String) settings.get(BufferGuard.REPORT_TOPIC), 0);
      consumer.assign(List.of(report));
      long end = consumer.endOffsets(List.of(report), Duration.ofSeconds(30)).get(report);
      if (end == 0) {
        return false;
      }
      consumer.seek(report, end - 1);
      for (ConsumerRecord<String, String> last : consumer.poll(Duration.ofSeconds(10))) {
        if (last.value() != null && last.value().contains("\"stopped\":true")) {
          LOG.info("Buffer guard: the source {} was stopped by the guard before this task started; it resumes "
              + "below {}.", settings.get(BufferGuard.CONNECTOR), percent((Double) settings.get(BufferGuard.RESUME_AT)));
          return true;
        }
      }
    }
    return false;
  }

  private void createReportTopic(String topic) throws Exception {
    short replication = (Short) settings.get(BufferGuard.REPLICATION);
    NewTopic report = new NewTopic(topic, 1, replication).configs(Map.of(
        "cleanup.policy", "compact", "min.insync.replicas", String.valueOf(Math.min(2, replication)),
        "segment.bytes", String.valueOf(1 << 20)));
    try {
      admin.createTopics(List.of(report)).all().get(30, TimeUnit.SECONDS);
    } catch (java.util.concurrent.ExecutionException exists) {
      if (!(exists.getCause() instanceof TopicExistsException)) {
        throw exists;
      }
    }
  }

  private static String percent(double share) {
    return String.format(Locale.ROOT, "%.0f%%", share * 100);
  }

  private static String size(long bytes) {
    return String.format(Locale.ROOT, "%.0f MiB", bytes / 1048576.0);
  }
}
