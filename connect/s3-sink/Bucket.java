package dataingestion.connect.s3;

import java.net.URI;
import java.time.Duration;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.awscore.retry.AwsRetryStrategy;
import software.amazon.awssdk.core.exception.SdkClientException;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.S3ClientBuilder;
import software.amazon.awssdk.services.s3.model.PutObjectRequest;
import software.amazon.awssdk.services.s3.model.S3Exception;

/** The archive's bucket, through the AWS SDK for Java v2: a conditional PutObject is all the sink needs. */
final class Bucket implements S3SinkTask.ObjectStore {

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

  private final String name;
  private final String location; // for messages: the endpoint, or the region
  private final S3Client s3;

  /** {@code endpoint} empty: AWS's regional endpoint. */
  Bucket(String name, String region, String endpoint, boolean pathStyle, String accessKeyId, String secretAccessKey) {
    this.name = name;
    this.location = endpoint.isEmpty() ? "AWS region " + region : endpoint;
    S3ClientBuilder builder = S3Client.builder()
        .region(Region.of(region))
        .credentialsProvider(StaticCredentialsProvider.create(AwsBasicCredentials.create(accessKeyId, secretAccessKey)))
        // The JDK's own HTTP connection: no Apache or Netty client on the plugin's path.
        .httpClientBuilder(UrlConnectionHttpClient.builder()
            .connectionTimeout(Duration.ofSeconds(10))
            .socketTimeout(Duration.ofSeconds(60)))
        // The task retries with its own backoff, its batch kept and Connect asked to redeliver; a
        // second loop inside the SDK would hold the task's thread and hide how long S3 has failed.
        .overrideConfiguration(override -> override
            .retryStrategy(AwsRetryStrategy.doNotRetry())
            .apiCallTimeout(Duration.ofSeconds(90)))
        .forcePathStyle(pathStyle);
    if (!endpoint.isEmpty()) {
      builder.endpointOverride(URI.create(endpoint));
    }
    this.s3 = builder.build();
  }

  /**
   * PutObject with {@code If-None-Match: *}: S3 refuses to replace an object that exists.
   * Returns false when the key was already taken (412), true when this call wrote it.
   */
  @Override
  public boolean putIfAbsent(String key, byte[] body, String contentType) throws UploadException {
    PutObjectRequest request = PutObjectRequest.builder()
        .bucket(name).key(key).ifNoneMatch("*").contentType(contentType).build();
    try {
      s3.putObject(request, RequestBody.fromBytes(body));
      return true;
    } catch (S3Exception e) {
      int status = e.statusCode();
      if (status == 412) {
        return false;
      }
      String code = e.awsErrorDetails() == null ? "" : " " + e.awsErrorDetails().errorCode();
      throw new UploadException("S3 answered " + status + code + " to PUT s3://" + name + "/" + key + ": "
          + e.getMessage(), isTransient(status), status, e);
    } catch (SdkClientException e) {
      throw new UploadException("cannot reach S3 (" + location + "): " + e.getMessage(), true, 0, e);
    }
  }

  /** Whether S3's answer may change on a retry: throttling, a timeout, a 5xx, or (409) another
   * conditional write to the same key in flight, whose outcome a retry learns. */
  static boolean isTransient(int status) {
    return status == 429 || status == 408 || status == 409 || status / 100 == 5;
  }

  @Override
  public void close() {
    s3.close();
  }
}
