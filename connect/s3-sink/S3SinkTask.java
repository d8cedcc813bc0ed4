package dataingestion.connect.s3;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Collection;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.zip.GZIPOutputStream;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.errors.ConnectException;
import org.apache.kafka.connect.errors.RetriableException;
import org.apache.kafka.connect.json.JsonConverter;
import org.apache.kafka.connect.sink.SinkRecord;
import org.apache.kafka.connect.sink.SinkTask;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Buffers each partition's records into one object and uploads it when it is full or old enough.
 * Offsets are committed only up to the last uploaded record, so a crash replays what was not yet
 * in S3 (at least once). An object's key is derived from its first offset, so a replay that starts
 * where the lost batch started overwrites the same key instead of adding a copy.
 */
public final class S3SinkTask extends SinkTask {
  private static final Logger LOG = LoggerFactory.getLogger(S3SinkTask.class);
  // A new IAM key or policy takes a while to reach every S3 endpoint: early refusals are retried.
  private static final long IAM_PROPAGATION_MS = 120_000L;

  private S3SinkConfig config;
  private S3Client s3;
  private long startedAt;
  private final JsonConverter json = new JsonConverter();
  private final Map<TopicPartition, Batch> batches = new HashMap<>();
  private final Map<TopicPartition, Long> uploadedUpTo = new HashMap<>();

  private final class Batch {
    final TopicPartition partition;
    final long firstOffset;
    final long openedAt;
    final ByteArrayOutputStream bytes = new ByteArrayOutputStream(1 << 20);
    final OutputStream out;
    long lastOffset;
    int records;

    Batch(TopicPartition partition, long firstOffset, long now) {
      this.partition = partition;
      this.firstOffset = firstOffset;
      this.lastOffset = firstOffset - 1;
      this.openedAt = now;
      try {
        this.out = config.gzip() ? new GZIPOutputStream(bytes, 64 * 1024) : bytes;
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    void append(SinkRecord record) {
      StringBuilder line = new StringBuilder(256)
          .append("{\"topic\":").append(quote(record.topic()))
          .append(",\"partition\":").append(record.kafkaPartition())
          .append(",\"offset\":").append(record.kafkaOffset())
          .append(",\"timestamp\":").append(record.timestamp())
          .append(",\"key\":").append(toJson(record.topic(), record.keySchema(), record.key()))
          .append(",\"value\":").append(toJson(record.topic(), record.valueSchema(), record.value()))
          .append("}\n");
      try {
        out.write(line.toString().getBytes(StandardCharsets.UTF_8));
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      lastOffset = record.kafkaOffset();
      records++;
    }

    String key() {
      String name = String.format("%s+%d+%020d.jsonl%s", partition.topic(), partition.partition(), firstOffset,
          config.gzip() ? ".gz" : "");
      String folder = partition.topic() + "/partition=" + partition.partition() + "/";
      return config.prefix().isEmpty() ? folder + name : config.prefix() + "/" + folder + name;
    }

    byte[] finish() throws IOException {
      out.close();
      return bytes.toByteArray();
    }
  }

  @Override
  public String version() {
    return S3SinkConnector.VERSION;
  }

  @Override
  public void start(Map<String, String> properties) {
    config = new S3SinkConfig(properties);
    s3 = config.client();
    startedAt = System.currentTimeMillis();
    json.configure(Map.of("schemas.enable", "false", "decimal.format", "NUMERIC"), false);
  }

  @Override
  public void open(Collection<TopicPartition> partitions) {
    forget(partitions);
  }

  @Override
  public void put(Collection<SinkRecord> records) {
    long now = System.currentTimeMillis();
    for (SinkRecord record : records) {
      TopicPartition partition = new TopicPartition(record.topic(), record.kafkaPartition());
      Batch batch = batches.get(partition);
      if (batch != null && record.kafkaOffset() <= batch.lastOffset) {
        continue; // redelivered after a failed upload: already in the batch
      }
      Long uploaded = uploadedUpTo.get(partition);
      if (batch == null && uploaded != null && record.kafkaOffset() <= uploaded) {
        continue; // redelivered, already in S3
      }
      if (batch == null) {
        batch = new Batch(partition, record.kafkaOffset(), now);
        batches.put(partition, batch);
      }
      batch.append(record);
      if (batch.records >= config.maxRecords()) {
        upload(batch);
      }
    }
    uploadExpired(now);
  }

  @Override
  public Map<TopicPartition, OffsetAndMetadata> preCommit(Map<TopicPartition, OffsetAndMetadata> current) {
    uploadExpired(System.currentTimeMillis());
    Map<TopicPartition, OffsetAndMetadata> safe = new HashMap<>();
    for (TopicPartition partition : current.keySet()) {
      Long uploaded = uploadedUpTo.get(partition);
      if (uploaded != null) {
        safe.put(partition, new OffsetAndMetadata(uploaded + 1));
      }
    }
    return safe;
  }

  @Override
  public void close(Collection<TopicPartition> partitions) {
    // Records not yet uploaded are not committed either; the next owner reads them again.
    forget(partitions);
  }

  private void forget(Collection<TopicPartition> partitions) {
    for (TopicPartition partition : partitions) {
      batches.remove(partition);
      uploadedUpTo.remove(partition);
    }
  }

  @Override
  public void stop() {
    batches.clear();
  }

  private void uploadExpired(long now) {
    Iterator<Batch> open = batches.values().iterator();
    while (open.hasNext()) {
      Batch batch = open.next();
      if (now - batch.openedAt >= config.rotateIntervalMs()) {
        write(batch);
        open.remove();
      }
    }
  }

  private void upload(Batch batch) {
    write(batch);
    batches.remove(batch.partition);
  }

  private void write(Batch batch) {
    String key = batch.key();
    try {
      s3.put(key, batch.finish(), config.gzip() ? "application/gzip" : "application/x-ndjson");
    } catch (S3Client.UploadException e) {
      // The batch is dropped and the records are asked for again: the replay rebuilds it from
      // firstOffset, so the retried object gets the same key.
      batches.remove(batch.partition);
      boolean propagating = e.status == 403 && System.currentTimeMillis() - startedAt < IAM_PROPAGATION_MS;
      if (e.transient_ || propagating) {
        context.timeout(config.retryBackoffMs());
        context.offset(batch.partition, batch.firstOffset);
        throw new RetriableException("S3 sink: upload of s3://" + config.bucket() + "/" + key
            + " failed, will retry: " + e.getMessage(), e);
      }
      throw new ConnectException("S3 sink: upload of s3://" + config.bucket() + "/" + key + " was refused: "
          + e.getMessage() + ". Check the sink's credentials, its IAM policy (it may write under '"
          + config.prefix() + "/' only) and that the bucket exists in " + config.region() + ".", e);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    uploadedUpTo.put(batch.partition, batch.lastOffset);
    LOG.debug("Uploaded {} records to s3://{}/{}", batch.records, config.bucket(), key);
  }

  private String toJson(String topic, Schema schema, Object value) {
    if (value == null) {
      return "null";
    }
    return new String(json.fromConnectData(topic, schema, value), StandardCharsets.UTF_8);
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
