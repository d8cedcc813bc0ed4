package dataingestion.connect.avro;

import java.util.LinkedHashMap;
import java.util.Map;

/** A bounded map for a cache, least recently used out first. Not synchronized. */
final class Lru<K, V> extends LinkedHashMap<K, V> {
  private static final long serialVersionUID = 1L;
  private final int capacity;

  Lru(int capacity) {
    super(16, 0.75f, true);
    this.capacity = capacity;
  }

  @Override
  protected boolean removeEldestEntry(Map.Entry<K, V> eldest) {
    return size() > capacity;
  }

  /** An object as a key by its identity: Avro's Schema.hashCode and equals walk the whole schema. */
  record Identity(Object of) {
    @Override
    public boolean equals(Object other) {
      return other instanceof Identity identity && identity.of == of;
    }

    @Override
    public int hashCode() {
      return System.identityHashCode(of);
    }
  }
}
