import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.stream.Stream;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;

/**
 * Installs Kafka Connect plugins from a manifest into a plugin.path directory, verifying the sha256
 * of everything it downloads or compiles. Run with the JDK's source launcher:
 *
 *   PLUGIN_REPOSITORY=https://repo1.maven.org/maven2 java InstallPlugins.java MANIFEST PLUGIN_DIR [CACHE_DIR]
 *
 * CACHE_DIR keeps the downloads and the compiled jars between runs, named by their sha256.
 * Manifest lines are tab-separated: plugin, kind, location, sha256 (or, for a service, the class).
 * Downloads are located by their path in the Maven repository PLUGIN_REPOSITORY (Central or a mirror).
 *   archive    a .tar.gz of the plugin's jars, unpacked without its top directory
 *   jar        one of the plugin's jars, for a plugin published as jars rather than an archive
 *   classpath  a jar needed only to compile the plugin's sources
 *   source     a .java file beside the manifest, compiled into <plugin>.jar (against the classpath
 *              entries and the plugin's own jars)
 *   service    a ServiceLoader entry of <plugin>.jar: interface, then implementation
 *   javac      the compiler's options for the plugin's sources, separated by spaces; then "-"
 */
public class InstallPlugins {
  record Entry(String plugin, String kind, String location, String check) {}

  static final class Plugin {
    final List<Path> classpath = new ArrayList<>();
    final List<Path> sources = new ArrayList<>();
    final Map<String, List<String>> services = new TreeMap<>();
    final List<String> javacOptions = new ArrayList<>();
  }

  public static void main(String[] args) throws Exception {
    String repository = System.getenv().getOrDefault("PLUGIN_REPOSITORY", "").replaceAll("/+$", "");
    if (args.length < 2 || repository.isEmpty()) {
      System.err.println("usage: PLUGIN_REPOSITORY=<Maven repository URL> java InstallPlugins.java MANIFEST PLUGIN_DIR [CACHE_DIR]");
      System.exit(2);
    }
    Path manifest = Path.of(args[0]).toAbsolutePath();
    Path pluginDir = Path.of(args[1]).toAbsolutePath();
    Path cache = args.length > 2 ? Path.of(args[2]).toAbsolutePath() : Files.createTempDirectory("plugins");
    Files.createDirectories(pluginDir);
    Files.createDirectories(cache);
    HttpClient http = HttpClient.newBuilder()
        .followRedirects(HttpClient.Redirect.NORMAL).connectTimeout(Duration.ofSeconds(20)).build();

    Map<String, Plugin> plugins = new LinkedHashMap<>();
    Set<Path> kept = new HashSet<>();
    Map<String, StringBuilder> declared = new TreeMap<>();
    for (String line : Files.readAllLines(manifest)) {
      if (line.isBlank() || line.startsWith("#")) {
        continue;
      }
      String[] f = line.split("\t");
      if (f.length != 4) {
        throw new IllegalArgumentException("manifest line needs 4 tab-separated fields: " + line);
      }
      Entry e = new Entry(f[0], f[1], f[2], f[3]);
      declared.computeIfAbsent(e.plugin(), name -> new StringBuilder()).append(line).append('\n');
      Plugin plugin = plugins.computeIfAbsent(e.plugin(), name -> new Plugin());
      Path target = pluginDir.resolve(e.plugin());
      switch (e.kind()) {
        case "archive" -> unpackTarGz(keep(kept, fetch(http, repository, e, cache)), target);
        case "jar" -> {
          Files.createDirectories(target);
          Files.copy(keep(kept, fetch(http, repository, e, cache)), target.resolve(fileName(e.location())),
              StandardCopyOption.REPLACE_EXISTING);
        }
        case "classpath" -> plugin.classpath.add(keep(kept, fetch(http, repository, e, cache)));
        case "source" -> {
          Path source = manifest.getParent().resolve(e.location());
          verify(e, source);
          plugin.sources.add(source);
        }
        case "service" -> plugin.services.computeIfAbsent(e.location(), k -> new ArrayList<>()).add(e.check());
        case "javac" -> plugin.javacOptions.addAll(List.of(e.location().split(" ")));
        default -> throw new IllegalArgumentException("unknown kind '" + e.kind() + "' in: " + line);
      }
    }
    for (Map.Entry<String, Plugin> entry : plugins.entrySet()) {
      if (!entry.getValue().sources.isEmpty()) {
        Path jar = build(entry.getKey(), entry.getValue(), pluginDir.resolve(entry.getKey()), cache,
            declared.get(entry.getKey()).toString());
        keep(kept, jar);
      }
    }
    prune(cache, kept);
    System.out.println("installed " + String.join(", ", plugins.keySet()) + " into " + pluginDir);
  }

  static Path keep(Set<Path> kept, Path cached) {
    kept.add(cached);
    return cached;
  }

  /**
   * Removes from the cache what this manifest no longer names (an upgraded plugin's old version) and
   * downloads a killed run left half done, so the cache volume holds one set of plugins, not all.
   */
  static void prune(Path cache, Set<Path> kept) throws IOException {
    long hourAgo = System.currentTimeMillis() - Duration.ofHours(1).toMillis();
    try (var files = Files.list(cache)) {
      for (Path file : (Iterable<Path>) files::iterator) {
        String name = file.getFileName().toString();
        boolean stale = name.matches("[0-9a-f]{64}-.+") && !kept.contains(file);
        boolean abandoned = name.endsWith(".part") && Files.getLastModifiedTime(file).toMillis() < hourAgo;
        if (stale || abandoned) {
          Files.deleteIfExists(file);
          System.out.println("removed from the cache: " + name);
        }
      }
    }
  }

  static String fileName(String location) {
    return location.substring(location.lastIndexOf('/') + 1);
  }

  /** The artifact at e.location in the repository, from the cache when a verified copy is there. */
  static Path fetch(HttpClient http, String repository, Entry e, Path cache) throws Exception {
    String url = repository + "/" + e.location();
    Path cached = cache.resolve(e.check() + "-" + fileName(e.location()));
    if (Files.exists(cached) && sha256(cached).equals(e.check())) {
      return cached;
    }
    Path partial = Files.createTempFile(cache, "download", ".part");
    Exception last = null;
    for (int attempt = 1; attempt <= 3; attempt++) {
      try {
        HttpResponse<Path> response = http.send(
            HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofMinutes(5)).build(),
            HttpResponse.BodyHandlers.ofFile(partial));
        if (response.statusCode() != 200) {
          throw new IOException("HTTP " + response.statusCode());
        }
        last = null;
        break;
      } catch (IOException failure) {
        last = failure;
        Thread.sleep(2000L * attempt);
      }
    }
    if (last != null) {
      Files.deleteIfExists(partial);
      throw new IOException("plugin " + e.plugin() + ": cannot download " + url + ": " + last, last);
    }
    verify(e, partial);
    Files.move(partial, cached, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    return cached;
  }

  static void verify(Entry e, Path file) throws Exception {
    String actual = sha256(file);
    if (!actual.equals(e.check())) {
      throw new SecurityException("plugin " + e.plugin() + ": " + e.location() + " has sha256 " + actual
          + ", the manifest pins " + e.check() + "; refusing to install it");
    }
  }

  static String sha256(Path file) throws Exception {
    MessageDigest digest = MessageDigest.getInstance("SHA-256");
    try (InputStream in = Files.newInputStream(file)) {
      byte[] buffer = new byte[1 << 16];
      for (int n; (n = in.read(buffer)) > 0; ) {
        digest.update(buffer, 0, n);
      }
    }
    return HexFormat.of().formatHex(digest.digest());
  }

  /** A .tar.gz unpacked under target without its top directory, by the image's own GNU tar. */
  static void unpackTarGz(Path archive, Path target) throws IOException, InterruptedException {
    Files.createDirectories(target);
    // GNU tar drops leading '/' and refuses '..' in member names, so nothing lands outside target.
    Process tar = new ProcessBuilder("tar", "--extract", "--gzip", "--no-same-owner", "--strip-components=1",
        "--file", archive.toString(), "--directory", target.toString()).redirectErrorStream(true).start();
    String output = new String(tar.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (tar.waitFor() != 0) {
      throw new IOException("cannot unpack " + archive.getFileName() + " into " + target + ": " + output);
    }
  }

  /**
   * The plugin's jar compiled from its sources, or copied from the cache when these very sources were
   * compiled against these very jars before (the key hashes the plugin's manifest lines, whose
   * sha256s pin every source and jar, and the compiler's options): a restarted worker compiles nothing.
   */
  static Path build(String name, Plugin plugin, Path target, Path cache, String declaration) throws Exception {
    MessageDigest digest = MessageDigest.getInstance("SHA-256");
    digest.update(declaration.getBytes(StandardCharsets.UTF_8));
    Path cached = cache.resolve(HexFormat.of().formatHex(digest.digest()) + "-" + name + ".jar");
    if (!Files.exists(cached)) {
      Path partial = Files.createTempFile(cache, "compiled", ".part");
      compile(name, plugin, target, partial);
      Files.move(partial, cached, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
      System.out.println("compiled " + name);
    } else {
      System.out.println("compiled " + name + " before: taken from the cache");
    }
    Files.createDirectories(target);
    Files.copy(cached, target.resolve(name + ".jar"), StandardCopyOption.REPLACE_EXISTING);
    return cached;
  }

  static void compile(String name, Plugin plugin, Path target, Path jar) throws IOException {
    JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
    if (javac == null) {
      throw new IllegalStateException("plugin " + name + " is built from source and needs a JDK, not a JRE");
    }
    Path classes = Files.createTempDirectory("classes");
    // Sources that extend a plugin published as jars compile against those jars too.
    List<String> classpath = new ArrayList<>(plugin.classpath.stream().map(Path::toString).toList());
    if (Files.isDirectory(target)) {
      try (Stream<Path> installed = Files.list(target)) {
        installed.filter(path -> path.toString().endsWith(".jar") && !path.getFileName().toString().equals(name + ".jar"))
            .sorted().forEach(path -> classpath.add(path.toString()));
      }
    }
    List<String> arguments = new ArrayList<>(plugin.javacOptions);
    arguments.addAll(List.of("-d", classes.toString(), "-cp", String.join(java.io.File.pathSeparator, classpath)));
    plugin.sources.forEach(source -> arguments.add(source.toString()));
    ByteArrayOutputStream errors = new ByteArrayOutputStream();
    if (javac.run(null, null, errors, arguments.toArray(String[]::new)) != 0) {
      throw new IllegalStateException("plugin " + name + " does not compile:\n" + errors);
    }
    try (OutputStream file = Files.newOutputStream(jar); JarOutputStream out = new JarOutputStream(file);
         Stream<Path> walk = Files.walk(classes)) {
      for (Path path : walk.filter(Files::isRegularFile).sorted().toList()) {
        out.putNextEntry(new JarEntry(classes.relativize(path).toString().replace('\\', '/')));
        Files.copy(path, out);
        out.closeEntry();
      }
      for (Map.Entry<String, List<String>> service : plugin.services.entrySet()) {
        out.putNextEntry(new JarEntry("META-INF/services/" + service.getKey()));
        out.write((String.join("\n", service.getValue()) + "\n").getBytes(StandardCharsets.UTF_8));
        out.closeEntry();
      }
    }
  }
}
