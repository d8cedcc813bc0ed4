package dataingestion.connect.limits;

import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.SchemaBuilder;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.errors.DataException;
import org.apache.kafka.connect.source.SourceRecord;
import org.junit.jupiter.api.Test;

class RecordSizeLimitTest {
  private static final Schema KEY = SchemaBuilder.struct().name("Key").field("id", Schema.INT64_SCHEMA).build();
  private static final Schema ROW = SchemaBuilder.struct().name("Value")
      .field("id", Schema.INT64_SCHEMA).field("body", Schema.OPTIONAL_STRING_SCHEMA).build();

  private static RecordSizeLimit<SourceRecord> limit(long maxBytes, boolean schemas) {
    RecordSizeLimit<SourceRecord> limit = new RecordSizeLimit<>();
    limit.configure(Map.of("max.bytes", String.valueOf(maxBytes), "schemas.enable", String.valueOf(schemas)));
    return limit;
  }

  private static SourceRecord row(long id, String body) {
    return new SourceRecord(Map.of(), Map.of(), "cdc.sales.orders", 0, KEY, new Struct(KEY).put("id", id),
        ROW, new Struct(ROW).put("id", id).put("body", body));
  }

  @Test
  void aRecordWithinTheLimitPassesAsItIs() {
    SourceRecord record = row(7, "x".repeat(100));
    assertSame(record, limit(1024, false).apply(record));
  }

  @Test
  void aRecordNearTheLimitIsMeasuredAsItsJson() {
    // Key {"id":7} is 8 bytes, value {"id":7,"body":"<n x>"} 18 + n: the cheap bound (6 bytes a
    // char) says no, the JSON itself says yes, to the byte.
    SourceRecord fits = row(7, "x".repeat(74));
    assertSame(fits, limit(100, false).apply(fits));
    assertThrows(DataException.class, () -> limit(100, false).apply(row(7, "x".repeat(75))));
  }

  @Test
  void aLargerRecordStopsTheSourceNamingTableKeyAndSetting() {
    DataException refused = assertThrows(DataException.class, () -> limit(1024, false).apply(row(42, "é".repeat(2000))));
    String message = refused.getMessage();
    assertTrue(message.contains("cdc.sales.orders"), message);
    assertTrue(message.contains("id=42"), message);
    assertTrue(message.contains("maxRecordBytes (1024 bytes)"), message);
    assertTrue(message.contains("pulumi config set maxRecordBytes"), message);
  }

  @Test
  void embeddedSchemasCount() {
    SourceRecord record = row(7, "x".repeat(60));
    assertSame(record, limit(100, false).apply(record));
    assertThrows(DataException.class, () -> limit(100, true).apply(record));
  }
}
