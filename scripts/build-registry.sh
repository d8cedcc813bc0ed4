#!/usr/bin/env bash
# Builds the Apicurio Registry server of VERSION from Maven Central, once, into
# ~/.cache/data-ingestion/apicurio-registry/VERSION/ (quarkus-app/quarkus-run.jar), and prints the
# jar's path. Maven Central holds the server's application jar and its dependencies, not a runnable
# server: the jar becomes the Quarkus application's root and Quarkus's own build packages it, as
# Apicurio's build does. Only 2.4.x builds this way (2.6.x and 3.x depend on modules Central lacks).
# About a minute with a warm ~/.m2, several cold.
set -euo pipefail
version=${1:?usage: build-registry.sh VERSION}
dest="${XDG_CACHE_HOME:-$HOME/.cache}/data-ingestion/apicurio-registry/$version"
if [ -f "$dest/quarkus-app/quarkus-run.jar" ]; then
  echo "$dest/quarkus-app/quarkus-run.jar"
  exit 0
fi
command -v mvn >/dev/null 2>&1 || { echo "Maven not found: install maven to build Apicurio Registry $version" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The Quarkus release the server was built with (its BOM names it).
quarkus=$(curl -fsS "https://repo1.maven.org/maven2/io/apicurio/apicurio-registry/$version/apicurio-registry-$version.pom" \
  | sed -n 's:.*<quarkus.version>\(.*\)</quarkus.version>.*:\1:p' | head -1)
[ -n "$quarkus" ] || { echo "Apicurio Registry $version: no Quarkus version in its BOM on Maven Central" >&2; exit 1; }
cat > "$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>data-ingestion</groupId>
  <artifactId>apicurio-registry-server</artifactId>
  <version>$version</version>
  <properties>
    <maven.compiler.release>17</maven.compiler.release>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
  </properties>
  <dependencyManagement>
    <dependencies>
      <dependency>
        <groupId>io.apicurio</groupId><artifactId>apicurio-registry</artifactId><version>$version</version>
        <type>pom</type><scope>import</scope>
      </dependency>
      <!-- The configuration index is served by Central only in this release. -->
      <dependency>
        <groupId>io.apicurio</groupId><artifactId>apicurio-common-app-components-config-index</artifactId>
        <version>0.1.10.Final</version>
      </dependency>
      <dependency>
        <groupId>io.apicurio</groupId><artifactId>apicurio-common-app-components-config-index-deployment</artifactId>
        <version>0.1.10.Final</version>
      </dependency>
    </dependencies>
  </dependencyManagement>
  <dependencies>
    <!-- The application's dependencies; its own jar is unpacked below as the application root. -->
    <dependency>
      <groupId>io.apicurio</groupId><artifactId>apicurio-registry-app</artifactId><version>$version</version>
      <type>pom</type>
      <exclusions>
        <!-- Published on JitPack only: the same library is on Central under its new coordinates. -->
        <exclusion><groupId>com.github.everit-org.json-schema</groupId><artifactId>org.everit.json.schema</artifactId></exclusion>
      </exclusions>
    </dependency>
    <dependency>
      <groupId>com.github.erosb</groupId><artifactId>everit-json-schema</artifactId><version>1.14.2</version>
    </dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId><artifactId>maven-dependency-plugin</artifactId><version>3.6.1</version>
        <executions>
          <execution>
            <id>application-root</id><phase>process-classes</phase><goals><goal>unpack</goal></goals>
            <configuration>
              <artifactItems>
                <artifactItem>
                  <groupId>io.apicurio</groupId><artifactId>apicurio-registry-app</artifactId><version>$version</version>
                  <outputDirectory>\${project.build.outputDirectory}</outputDirectory>
                </artifactItem>
              </artifactItems>
            </configuration>
          </execution>
        </executions>
      </plugin>
      <plugin>
        <groupId>io.quarkus</groupId><artifactId>quarkus-maven-plugin</artifactId><version>$quarkus</version>
        <executions><execution><goals><goal>build</goal></goals></execution></executions>
      </plugin>
    </plugins>
  </build>
</project>
EOF
# The application asks for the legacy layout; the fast one starts sooner.
(cd "$work" && mvn -B -q -DskipTests -Dquarkus.package.type=fast-jar package >&2)
mkdir -p "$dest"
rm -rf "$dest/quarkus-app.partial"
cp -r "$work/target/quarkus-app" "$dest/quarkus-app.partial"
mv "$dest/quarkus-app.partial" "$dest/quarkus-app"
echo "$dest/quarkus-app/quarkus-run.jar"
