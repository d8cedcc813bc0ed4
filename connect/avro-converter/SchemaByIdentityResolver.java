package dataingestion.connect.avro;

import io.apicurio.registry.resolver.DefaultSchemaResolver;
import io.apicurio.registry.resolver.SchemaLookupResult;
import io.apicurio.registry.resolver.data.Record;
import io.apicurio.registry.serde.data.KafkaSerdeMetadata;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.avro.generic.GenericContainer;

/**
 * Apicurio's schema resolver, asked once per schema rather than once per record. Its own resolveSchema
 * writes the record's Avro schema out as JSON text and looks that text up in its content cache for
 * every record it serializes: a profile of `make bench` put about a tenth of Connect's CPU there.
 * AvroData gives one Avro schema object per Connect schema, and Debezium one Connect schema per
 * table version, so what the registry answered for a schema object is kept by the object's identity,
 * per topic. What fails (the registry away, a schema refused) is not kept: the next record asks again.
 */
public class SchemaByIdentityResolver<S, T> extends DefaultSchemaResolver<S, T> {
  // A topic holds a few live schema versions; older ones fall out first.
  private static final int SCHEMAS_PER_TOPIC = 32;

  private final Map<String, Map<Lru.Identity, SchemaLookupResult<S>>> resolved = new ConcurrentHashMap<>();

  @Override
  public SchemaLookupResult<S> resolveSchema(Record<T> data) {
    if (!(data.payload() instanceof GenericContainer container) || !(data.metadata() instanceof KafkaSerdeMetadata kafka)) {
      return super.resolveSchema(data);
    }
    Map<Lru.Identity, SchemaLookupResult<S>> byIdentity = resolved.computeIfAbsent(
        kafka.getTopic() + (kafka.isKey() ? "/key" : "/value"), topic -> new Lru<>(SCHEMAS_PER_TOPIC));
    Lru.Identity schema = new Lru.Identity(container.getSchema());
    synchronized (byIdentity) {
      SchemaLookupResult<S> known = byIdentity.get(schema);
      if (known != null) {
        return known;
      }
    }
    SchemaLookupResult<S> found = super.resolveSchema(data);
    synchronized (byIdentity) {
      byIdentity.put(schema, found);
    }
    return found;
  }

  @Override
  public void reset() {
    resolved.clear();
    super.reset();
  }
}
