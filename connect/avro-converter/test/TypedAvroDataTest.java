package dataingestion.connect.avro;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.apicurio.registry.utils.converter.avro.AvroDataConfig;
import java.util.Map;
import org.apache.avro.LogicalType;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericRecord;
import org.apache.kafka.connect.data.SchemaAndValue;
import org.apache.kafka.connect.data.SchemaBuilder;
import org.apache.kafka.connect.data.Struct;
import org.junit.jupiter.api.Test;

class TypedAvroDataTest {
  // A row as Debezium describes it: its semantic types are Connect schema names on plain types.
  private static final org.apache.kafka.connect.data.Schema ROW = SchemaBuilder.struct()
      .name("cdc.sales.orders.Value")
      .field("day", SchemaBuilder.int32().name("io.debezium.time.Date").version(1).build())
      .field("at", SchemaBuilder.int64().name("io.debezium.time.MicroTimestamp").version(1).build())
      .field("at_ms", SchemaBuilder.int64().name("io.debezium.time.Timestamp").version(1).build())
      .field("clock", SchemaBuilder.int64().name("io.debezium.time.MicroTime").version(1).optional().build())
      .field("clock_ms", SchemaBuilder.int32().name("io.debezium.time.Time").version(1).build())
      .field("id", SchemaBuilder.string().name("io.debezium.data.Uuid").version(1).build())
      .field("zoned", SchemaBuilder.string().name("io.debezium.time.ZonedTimestamp").version(1).build())
      .field("count", SchemaBuilder.int64().build())
      .build();

  private final TypedAvroConverter.TypedAvroData data = new TypedAvroConverter.TypedAvroData(new AvroDataConfig(Map.of()));

  private static String logicalType(Schema field) {
    Schema plain = field.getType() == Schema.Type.UNION
        ? field.getTypes().stream().filter(member -> member.getType() != Schema.Type.NULL).findFirst().orElseThrow()
        : field;
    LogicalType logical = plain.getLogicalType();
    return logical == null ? null : logical.getName();
  }

  @Test
  void debeziumsTemporalAndUuidColumnsAreAvroLogicalTypes() {
    Schema avro = data.fromConnectSchema(ROW);

    assertEquals("date", logicalType(avro.getField("day").schema()));
    assertEquals("local-timestamp-micros", logicalType(avro.getField("at").schema()));
    assertEquals("local-timestamp-millis", logicalType(avro.getField("at_ms").schema()));
    assertEquals("time-micros", logicalType(avro.getField("clock").schema()));
    assertEquals("time-millis", logicalType(avro.getField("clock_ms").schema()));
    assertEquals("uuid", logicalType(avro.getField("id").schema()));
    // A zoned timestamp is text with its offset; a count is a count.
    assertNull(logicalType(avro.getField("zoned").schema()));
    assertNull(logicalType(avro.getField("count").schema()));
    // As the registry stores it, and as a reader parses it again.
    Schema parsed = new Schema.Parser().parse(avro.toString());
    assertEquals("local-timestamp-micros", logicalType(parsed.getField("at").schema()));
  }

  @Test
  void valuesComeBackAsDebeziumWroteThem() {
    Struct row = new Struct(ROW)
        .put("day", 19_723).put("at", 1_704_067_200_123_456L).put("at_ms", 1_704_067_200_123L)
        .put("clock", 86_399_999_999L).put("clock_ms", 1_000).put("id", "6f1c1f7e-4a55-4a8e-9d2f-1f6b5b0b6c11")
        .put("zoned", "2024-01-01T00:00:00.123456Z").put("count", 3L);
    Schema avro = data.fromConnectSchema(ROW);
    GenericRecord written = (GenericRecord) data.fromConnectData(ROW, row);

    // Read back with the schema the registry hands out: a parsed copy, annotations and all.
    Schema registered = new Schema.Parser().parse(avro.toString());
    SchemaAndValue read = data.toConnectData(registered, written, null);

    assertEquals("io.debezium.time.MicroTimestamp", read.schema().field("at").schema().name());
    assertEquals("io.debezium.data.Uuid", read.schema().field("id").schema().name());
    Struct back = (Struct) read.value();
    for (org.apache.kafka.connect.data.Field field : ROW.fields()) {
      assertEquals(row.get(field.name()), back.get(field.name()), field.name());
    }
  }
}
