package dataingestion.connect.policy;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.apache.kafka.common.config.ConfigValue;
import org.apache.kafka.connect.connector.policy.ConnectorClientConfigOverridePolicy;
import org.apache.kafka.connect.connector.policy.ConnectorClientConfigRequest;

/**
 * Lets a connector override exactly the client settings the worker lists, and nothing else: a
 * connector cannot point its producer or consumer at another cluster, change its security settings
 * or load interceptors. The list is the worker property {@value #ALLOWED}: full connector keys such
 * as {@code producer.override.linger.ms}.
 */
public final class AllowlistOverridePolicy implements ConnectorClientConfigOverridePolicy {
  public static final String ALLOWED = "client.config.override.allowlist";
  private Set<String> allowed = Set.of();

  @Override
  public void configure(Map<String, ?> configs) {
    Object listed = configs.get(ALLOWED);
    Set<String> keys = new TreeSet<>();
    if (listed != null) {
      Arrays.stream(listed.toString().split(",")).map(String::trim).filter(k -> !k.isEmpty()).forEach(keys::add);
    }
    allowed = Set.copyOf(keys);
  }

  @Override
  public List<ConfigValue> validate(ConnectorClientConfigRequest request) {
    String prefix = switch (request.clientType()) {
      case PRODUCER -> "producer.override.";
      case CONSUMER -> "consumer.override.";
      case ADMIN -> "admin.override.";
    };
    List<ConfigValue> results = new ArrayList<>();
    for (Map.Entry<String, Object> entry : request.clientProps().entrySet()) {
      ConfigValue value = new ConfigValue(entry.getKey(), entry.getValue(), List.of(), new ArrayList<>());
      if (!allowed.contains(prefix + entry.getKey())) {
        value.addErrorMessage(prefix + entry.getKey() + " may not be overridden by a connector on this worker; "
            + "it allows only: " + String.join(", ", allowed));
      }
      results.add(value);
    }
    return results;
  }

  @Override
  public void close() {}
}
