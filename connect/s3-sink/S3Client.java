package dataingestion.connect.s3;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.time.Duration;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/** A conditional PutObject over HTTPS with AWS Signature Version 4: all the S3 API the sink needs. */
final class S3Client {
  private static final DateTimeFormatter STAMP = DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss'Z'");
  private static final String UNRESERVED =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~";

  /** An upload S3 refused; transient failures (throttling, 5xx, I/O) may be tried again. */
  static final class UploadException extends Exception {
    private static final long serialVersionUID = 1L;
    final boolean transient_;
    final int status; // 0 when S3 was not reached

    UploadException(String message, boolean transient_, int status, Throwable cause) {
      super(message, cause);
      this.transient_ = transient_;
      this.status = status;
    }
  }

  private final URI base;
  private final String region;
  private final String accessKeyId;
  private final String secretAccessKey;
  private final HttpClient http;

  S3Client(URI base, String region, String accessKeyId, String secretAccessKey) {
    this.base = base;
    this.region = region;
    this.accessKeyId = accessKeyId;
    this.secretAccessKey = secretAccessKey;
    this.http = HttpClient.newBuilder()
        .version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(10))
        .build();
  }

  /**
   * PutObject with {@code If-None-Match: *}: S3 refuses to replace an object that exists.
   * Returns false when the key was already taken (412), true when this call wrote it.
   */
  boolean putIfAbsent(String key, byte[] body, String contentType) throws UploadException {
    String path = (base.getRawPath() == null ? "" : base.getRawPath()) + "/" + encodePath(key);
    URI uri = base.resolve(path);
    ZonedDateTime now = ZonedDateTime.now(ZoneOffset.UTC);
    String amzDate = now.format(STAMP);
    String day = amzDate.substring(0, 8);
    String payloadHash = hex(sha256(body));
    String host = uri.getPort() == -1 ? uri.getHost() : uri.getHost() + ":" + uri.getPort();
    String signedHeaders = "content-type;host;if-none-match;x-amz-content-sha256;x-amz-date";
    String canonicalRequest = String.join("\n",
        "PUT", uri.getRawPath(), "",
        "content-type:" + contentType, "host:" + host, "if-none-match:*", "x-amz-content-sha256:" + payloadHash,
        "x-amz-date:" + amzDate, "", signedHeaders, payloadHash);
    String scope = day + "/" + region + "/s3/aws4_request";
    String toSign = String.join("\n",
        "AWS4-HMAC-SHA256", amzDate, scope, hex(sha256(canonicalRequest.getBytes(StandardCharsets.UTF_8))));
    byte[] signingKey = hmac(hmac(hmac(hmac(
        ("AWS4" + secretAccessKey).getBytes(StandardCharsets.UTF_8), day), region), "s3"), "aws4_request");
    String authorization = "AWS4-HMAC-SHA256 Credential=" + accessKeyId + "/" + scope
        + ", SignedHeaders=" + signedHeaders + ", Signature=" + hex(hmac(signingKey, toSign));

    HttpRequest request = HttpRequest.newBuilder(uri)
        .timeout(Duration.ofSeconds(60))
        .header("Content-Type", contentType)
        .header("If-None-Match", "*")
        .header("x-amz-content-sha256", payloadHash)
        .header("x-amz-date", amzDate)
        .header("Authorization", authorization)
        .PUT(HttpRequest.BodyPublishers.ofByteArray(body))
        .build();
    HttpResponse<String> response;
    try {
      response = http.send(request, HttpResponse.BodyHandlers.ofString());
    } catch (IOException e) {
      throw new UploadException("cannot reach S3 at " + base + ": " + e, true, 0, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new UploadException("interrupted while uploading to " + base, true, 0, e);
    }
    int status = response.statusCode();
    if (status / 100 == 2) {
      return true;
    }
    if (status == 412) {
      return false;
    }
    String detail = response.body().length() > 500 ? response.body().substring(0, 500) : response.body();
    // 409: another conditional write to the same key was in flight; try again to learn its outcome.
    boolean retry = status == 429 || status == 408 || status == 409 || status / 100 == 5;
    throw new UploadException("S3 answered " + status + " to PUT " + uri + ": " + detail, retry, status, null);
  }

  static String encodePath(String key) {
    StringBuilder out = new StringBuilder();
    for (byte b : key.getBytes(StandardCharsets.UTF_8)) {
      char c = (char) (b & 0xff);
      if (c == '/' || UNRESERVED.indexOf(c) >= 0) {
        out.append(c);
      } else {
        out.append('%').append(String.format("%02X", b & 0xff));
      }
    }
    return out.toString();
  }

  private static byte[] sha256(byte[] data) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(data);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException(e);
    }
  }

  private static byte[] hmac(byte[] key, String data) {
    try {
      Mac mac = Mac.getInstance("HmacSHA256");
      mac.init(new SecretKeySpec(key, "HmacSHA256"));
      return mac.doFinal(data.getBytes(StandardCharsets.UTF_8));
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException(e);
    }
  }

  private static String hex(byte[] bytes) {
    StringBuilder out = new StringBuilder(bytes.length * 2);
    for (byte b : bytes) {
      out.append(String.format("%02x", b & 0xff));
    }
    return out.toString();
  }
}
