package dataingestion.connect.debezium;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import io.debezium.connector.postgresql.PostgresValueConverter;
import io.debezium.data.Json;
import io.debezium.data.SpecialValueDecimal;
import io.debezium.data.Uuid;
import io.debezium.data.VariableScaleDecimal;
import io.debezium.jdbc.JdbcValueConverters.DecimalMode;
import io.debezium.jdbc.TemporalPrecisionMode;
import io.debezium.spi.converter.CustomConverter;
import io.debezium.spi.converter.RelationalColumn;
import io.debezium.time.Interval;
import io.debezium.time.MicroTime;
import io.debezium.time.MicroTimestamp;
import io.debezium.time.ZonedTimestamp;
import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.sql.Array;
import java.sql.SQLException;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeFormatterBuilder;
import java.time.temporal.ChronoField;
import java.util.AbstractList;
import java.util.ArrayList;
import java.util.Calendar;
import java.util.GregorianCalendar;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.function.Function;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.SchemaBuilder;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.errors.DataException;
import org.postgresql.PGStatement;
import org.postgresql.util.PGInterval;
import org.postgresql.util.PGobject;

/**
 * The PostgreSQL values Debezium's own conversion changes, converted exactly, each column keeping the
 * type a reader expects:
 *
 * <ul>
 *   <li>{@code date}: days since 1970-01-01 ({@code io.debezium.time.Date}, as Debezium writes it),
 *       with ±infinity as the largest and smallest count (PostgreSQL keeps them the same way), where
 *       Debezium writes an arbitrary day. A snapshot of whole tables reads dates as text
 *       ({@link ExactSnapshotQuery}); an incremental one reads them through the JDBC driver's Julian
 *       calendar, and they are turned back into PostgreSQL's proleptic Gregorian ones, so that
 *       1500-03-01 and 44 BC arrive as in the stream (not the ten days that calendar lacks,
 *       1582-10-05 to 1582-10-14: the driver has already made them ten days later).
 *   <li>{@code varbit}: the bits as text ({@code "0010"}), where Debezium's bytes drop leading zeros
 *       and a varbit has no declared length to bring them back.
 *   <li>{@code numeric}, with {@code numerics=typed}: Debezium's decimal of the declared scale, or
 *       (unconstrained) its variable-scale decimal with the scale PostgreSQL kept ({@code 1.500}, where
 *       Debezium strips it to {@code 1.5}). NaN and ±Infinity, which no decimal holds, leave here as
 *       markers that {@link NonFiniteNumerics} turns into a null and a header naming the value; so
 *       every numeric column may be null in the change's schema. With {@code numerics=text}: the
 *       number as PostgreSQL writes it ({@code 1.500}, {@code NaN}, {@code -Infinity}).
 *   <li>arrays: each element as a column of its type would be, for integers, floats, booleans,
 *       intervals, and numerics, dates, times and timestamps with and without time zone (these read
 *       from PostgreSQL's text, which the driver's own reading changes), for bit strings (their bits' text) and for
 *       the types Debezium writes as text (text, names, uuid, json, network addresses,
 *       ranges of numbers and dates). A value no such list holds (more dimensions than the column's
 *       one: PostgreSQL lets an {@code int[]} column hold {@code {{1,2},{3,4}}}, which Debezium writes
 *       as {@code [null, null]}; or a numeric's NaN) leaves as a marker holding its JSON, which
 *       {@link NonFiniteNumerics} turns into a null and a header; so every such array column may be
 *       null in the change's schema.
 * </ul>
 */
public final class ExactValues implements CustomConverter<SchemaBuilder, RelationalColumn> {

  private static final String DATE = "date";
  private static final String DATE_SCHEMA = "io.debezium.time.Date";
  public static final int DATE_INFINITY = Integer.MAX_VALUE;
  public static final int DATE_MINUS_INFINITY = Integer.MIN_VALUE;

  // PostgreSQL writes a year before 1 as its year BC (the root locale's eras are BCE and CE).
  private static final Map<Long, String> PG_ERAS = Map.of(0L, "BC", 1L, "AD");
  // PostgreSQL's date text: 0044-03-15 BC for ISO's year -43.
  private static final DateTimeFormatter PG_DATE = new DateTimeFormatterBuilder()
      .appendPattern("yyyy-MM-dd").optionalStart().appendLiteral(' ')
      .appendText(ChronoField.ERA, PG_ERAS).optionalEnd()
      .toFormatter(Locale.ROOT);

  // PostgreSQL's timestamp text: 0044-03-15 01:00:00.5 BC.
  private static final DateTimeFormatter PG_TIMESTAMP = new DateTimeFormatterBuilder()
      .appendPattern("yyyy-MM-dd HH:mm:ss").appendFraction(ChronoField.NANO_OF_SECOND, 0, 9, true)
      .optionalStart().appendLiteral(' ').appendText(ChronoField.ERA, PG_ERAS).optionalEnd()
      .toFormatter(Locale.ROOT);

  // PostgreSQL's timestamptz text (2026-01-02 03:04:05.5+05:30, 0044-03-15 01:00:00+00 BC), and
  // Debezium's (its ZonedTimestamp: UTC, six digits of fraction, ISO's year -43 for 44 BC).
  private static final DateTimeFormatter PG_TIMESTAMPTZ = new DateTimeFormatterBuilder()
      .appendPattern("yyyy-MM-dd HH:mm:ss").appendFraction(ChronoField.NANO_OF_SECOND, 0, 9, true)
      .parseLenient().appendOffset("+HH:MM:ss", "Z").parseStrict()
      .optionalStart().appendLiteral(' ').appendText(ChronoField.ERA, PG_ERAS).optionalEnd()
      .toFormatter(Locale.ROOT);
  private static final DateTimeFormatter UTC_MICROS = DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSSSSS'Z'", Locale.ROOT);

  // What JDBC gives as the length of a numeric declared without precision (Debezium's test as well).
  private static final int UNCONSTRAINED_LENGTH = 131089;

  private boolean typedNumerics = true;

  @Override
  public void configure(Properties properties) {
    String numerics = properties.getProperty("numerics", "typed");
    if (!numerics.equals("typed") && !numerics.equals("text")) {
      throw new IllegalArgumentException("ExactValues: numerics is typed or text, not " + numerics);
    }
    typedNumerics = numerics.equals("typed");
  }

  @Override
  public void converterFor(RelationalColumn column, ConverterRegistration<SchemaBuilder> registration) {
    switch (column.typeName().toLowerCase(Locale.ROOT)) {
      case DATE -> registration.register(optional(column, dateSchema()), value -> value == null ? null : epochDay(column, value));
      case "_date" -> array(registration, dateSchema().optional().build(), ExactValues::textElements,
          element -> epochDay(column, element));
      case "varbit", "bit varying" -> registration.register(optional(column, SchemaBuilder.string()),
          value -> value == null ? null : value instanceof PGobject bits ? bits.getValue() : value.toString());
      case "numeric", "decimal" -> numeric(column, registration);
      case "_numeric" -> numericArray(column, registration);
      case "_interval" -> array(registration, Schema.OPTIONAL_STRING_SCHEMA, ExactValues::isoInterval);
      case "_time" -> temporalArray(column, registration, false);
      case "_timestamp" -> temporalArray(column, registration, true);
      case "_timestamptz" -> array(registration, ZonedTimestamp.builder().optional().build(), ExactValues::textElements,
          ExactValues::zonedTimestamp);
      case "_int2" -> array(registration, Schema.OPTIONAL_INT16_SCHEMA, element -> ((Number) element).shortValue());
      case "_int4" -> array(registration, Schema.OPTIONAL_INT32_SCHEMA, element -> ((Number) element).intValue());
      case "_float4" -> array(registration, Schema.OPTIONAL_FLOAT32_SCHEMA, element -> ((Number) element).floatValue());
      case "_float8" -> array(registration, Schema.OPTIONAL_FLOAT64_SCHEMA, element -> ((Number) element).doubleValue());
      case "_bool" -> array(registration, Schema.OPTIONAL_BOOLEAN_SCHEMA, element -> (Boolean) element);
      case "_int8", "_oid" -> array(registration, Schema.OPTIONAL_INT64_SCHEMA, element -> ((Number) element).longValue());
      // Elements the driver gives as text (a PGobject's text is its value), as Debezium writes them.
      case "_text", "_varchar", "_bpchar", "_char", "_name", "_inet", "_cidr", "_macaddr", "_macaddr8", "_int4range",
           "_int8range", "_numrange", "_daterange" -> array(registration, Schema.OPTIONAL_STRING_SCHEMA, Object::toString);
      // Bit strings as their bits' text, as a varbit column's (Debezium takes a bit array for one bit string).
      case "_bit", "_varbit" -> array(registration, Schema.OPTIONAL_STRING_SCHEMA, ExactValues::textElements, Object::toString);
      case "_uuid" -> array(registration, Uuid.builder().optional().build(), Object::toString);
      case "_json", "_jsonb" -> array(registration, Json.builder().optional().build(), Object::toString);
      default -> {
      }
    }
  }

  private static SchemaBuilder dateSchema() {
    return SchemaBuilder.int32().name(DATE_SCHEMA).version(1);
  }

  /**
   * An array of times or timestamps, read from PostgreSQL's text (the driver's Time keeps
   * milliseconds and no 24:00:00, its Timestamp the Julian calendar): each element as a count in the
   * unit Debezium gives such a column, ±infinity as the largest and smallest count.
   */
  private static void temporalArray(RelationalColumn column, ConverterRegistration<SchemaBuilder> registration,
                                    boolean timestamp) {
    int precision = column.scale().orElse(-1);  // as Debezium takes a time's precision
    Schema element = (timestamp ? TemporalPrecisionMode.ADAPTIVE.getTimestampBuilder(precision)
        : TemporalPrecisionMode.ADAPTIVE.getTimeBuilder(precision)).optional().build();
    long perSecond = perSecond(element.name());
    array(registration, element, ExactValues::textElements, value -> {
      String text = value.toString();
      long count;
      if (timestamp && text.equals("infinity")) {
        count = Long.MAX_VALUE;
      } else if (timestamp && text.equals("-infinity")) {
        count = Long.MIN_VALUE;
      } else if (timestamp) {
        LocalDateTime wallClock = LocalDateTime.parse(text, PG_TIMESTAMP);
        count = Math.addExact(Math.multiplyExact(wallClock.toEpochSecond(ZoneOffset.UTC), perSecond),
            wallClock.getNano() / (1_000_000_000L / perSecond));
      } else {
        long nanos = text.equals("24:00:00") ? 86_400_000_000_000L : LocalTime.parse(text).toNanoOfDay();
        count = nanos / (1_000_000_000L / perSecond);
      }
      return element.type() == Schema.Type.INT32 ? (Object) Math.toIntExact(count) : (Object) count;
    });
  }

  /** How many of a Debezium time's or timestamp's unit make a second. */
  private static long perSecond(String schemaName) {
    return switch (schemaName) {
      case io.debezium.time.Time.SCHEMA_NAME, io.debezium.time.Timestamp.SCHEMA_NAME -> 1_000L;
      case MicroTime.SCHEMA_NAME, MicroTimestamp.SCHEMA_NAME -> 1_000_000L;
      default -> 1_000_000_000L;
    };
  }

  /** A count of a Debezium date, time or timestamp as the archive writes it: 24:00:00, infinity, ISO 8601. */
  private static String temporalText(String schemaName, long count) {
    if (schemaName.equals(DATE_SCHEMA)) {
      return count == DATE_INFINITY ? "infinity" : count == DATE_MINUS_INFINITY ? "-infinity"
          : LocalDate.ofEpochDay(count).toString();
    }
    boolean timestamp = schemaName.endsWith("Timestamp");
    if (timestamp && (count == Long.MAX_VALUE || count == Long.MIN_VALUE)) {
      return count > 0 ? "infinity" : "-infinity";
    }
    long perSecond = perSecond(schemaName);
    long seconds = Math.floorDiv(count, perSecond);
    int nanos = (int) (Math.floorMod(count, perSecond) * (1_000_000_000L / perSecond));
    if (timestamp) {
      return DateTimeFormatter.ISO_LOCAL_DATE_TIME.format(LocalDateTime.ofEpochSecond(seconds, nanos, ZoneOffset.UTC));
    }
    return seconds == 86_400 ? "24:00:00" : DateTimeFormatter.ISO_LOCAL_TIME.format(LocalTime.ofSecondOfDay(seconds).withNano(nanos));
  }

  /** A timestamptz's text (0044-03-15 01:00:00+00 BC) as Debezium writes a timestamptz column: UTC, µs. */
  private static String zonedTimestamp(Object value) {
    String text = value.toString();
    if (text.equals("infinity") || text.equals("-infinity")) {
      return text;
    }
    return UTC_MICROS.format(OffsetDateTime.parse(text, PG_TIMESTAMPTZ).withOffsetSameInstant(ZoneOffset.UTC));
  }

  /** An interval as ISO 8601 text, as Debezium writes an interval column (interval.handling.mode string). */
  private static String isoInterval(Object value) {
    try {
      PGInterval interval = value instanceof PGInterval given ? given : new PGInterval(value.toString());
      return Interval.toIsoString(interval.getYears(), interval.getMonths(), interval.getDays(), interval.getHours(),
          interval.getMinutes(), BigDecimal.valueOf(interval.getSeconds()));
    } catch (SQLException e) {
      throw new DataException("an interval PostgreSQL sent could not be read: " + value, e);
    }
  }

  /** A column this converter reads as a date (a domain over date is not one: Debezium converts it). */
  static boolean isDate(io.debezium.relational.Column column) {
    return column.typeName().toLowerCase(Locale.ROOT).equals(DATE);
  }

  private void numeric(RelationalColumn column, ConverterRegistration<SchemaBuilder> registration) {
    SchemaBuilder builder = typedNumerics ? numericSchema(column).optional() : optional(column, numericSchema(column));
    Schema[] schema = new Schema[1];  // as Debezium completes it (a column's default, say): a struct names its schema
    registration.register(builder, value -> {
      if (value == null) {
        return null;
      }
      if (schema[0] == null) {
        schema[0] = builder.build();
      }
      return numericValue(column, schema[0], value);
    });
  }

  /** An array of numerics, read from PostgreSQL's text: each element as a numeric column's value. */
  private void numericArray(RelationalColumn column, ConverterRegistration<SchemaBuilder> registration) {
    Schema element = numericSchema(column).optional().build();
    array(registration, element, ExactValues::textElements, value -> numericValue(column, element, value));
  }

  /** Text where records carry no types; else Debezium's decimal of the declared scale, or its variable-scale decimal. */
  private SchemaBuilder numericSchema(RelationalColumn column) {
    if (!typedNumerics) {
      return SchemaBuilder.string();
    }
    int scale = column.scale().orElse(0);
    int length = column.length().orElse(0);
    return scale == 0 && (length == 0 || length == UNCONSTRAINED_LENGTH) ? VariableScaleDecimal.builder()
        : SpecialValueDecimal.builder(DecimalMode.PRECISE, length, scale);
  }

  /** A numeric as {@code schema} holds it; NaN and ±Infinity, which no decimal holds, as a NonFinite marker. */
  private Object numericValue(RelationalColumn column, Schema schema, Object value) {
    SpecialValueDecimal number = decimal(column, value);
    if (!typedNumerics) {
      return text(column, number);
    }
    boolean finite = number.getDecimalValue().isPresent();
    if (VariableScaleDecimal.LOGICAL_NAME.equals(schema.name())) {
      return finite ? VariableScaleDecimal.fromLogical(schema, number) : new NonFiniteStruct(schema, text(column, number));
    }
    return finite ? number.getDecimalValue().get().setScale(column.scale().orElse(0))
        : new NonFiniteDecimal(text(column, number));
  }

  /**
   * An array column of a type whose elements Debezium passes on as the driver reads them: the same
   * schema as Debezium's (optional, for the null an unheld value leaves), the same list, and a value
   * no such list holds as a {@link UnheldArray}.
   */
  private static void array(ConverterRegistration<SchemaBuilder> registration, Schema element,
                            Function<Object, Object> convert) {
    array(registration, element, ExactValues::elements, convert);
  }

  /** As above, with the elements read by {@code read}: nested arrays of each element as it came. */
  private static void array(ConverterRegistration<SchemaBuilder> registration, Schema element,
                            Function<Object, Object[]> read, Function<Object, Object> convert) {
    registration.register(SchemaBuilder.array(element).optional(), value -> {
      if (!(value instanceof Array) && !(value instanceof List<?>)) {
        return null;  // null, or a default as the catalog writes it, which Debezium does not read either
      }
      Object[] elements = read.apply(value);
      if (elements.length > 0 && elements[0] instanceof Object[]) {
        return new UnheldArray(json(elements, convert, element));
      }
      List<Object> converted = new ArrayList<>(elements.length);
      for (Object item : elements) {
        Object one = item == null ? null : convert.apply(item);
        if (one instanceof NonFinite) {
          return new UnheldArray(json(elements, convert, element));
        }
        converted.add(one);
      }
      return converted;
    });
  }

  private static Object[] elements(Object value) {
    if (value instanceof List<?> list) {
      return list.toArray();
    }
    try {
      return (Object[]) ((Array) value).getArray();
    } catch (SQLException e) {
      throw new DataException("an array PostgreSQL sent could not be read: " + e.getMessage(), e);
    }
  }

  /**
   * An array's elements as PostgreSQL wrote them ({2026-01-02,"0044-03-15 BC",NULL}), nested as they
   * are, for the types whose elements the driver would change: it reads dates through its Julian
   * calendar (which lacks 1582-10-05..14) and numerics without their NaN.
   */
  private static Object[] textElements(Object value) {
    if (value instanceof List<?>) {
      return elements(value);
    }
    String text = value.toString();  // the driver's PgArray: the text it was given
    int[] at = {text.indexOf('{')};
    return parseElements(text, at);
  }

  private static Object[] parseElements(String text, int[] at) {
    List<Object> found = new ArrayList<>();
    at[0]++;  // past its '{'
    while (text.charAt(at[0]) != '}') {
      char next = text.charAt(at[0]);
      if (next == ',') {
        at[0]++;
      } else if (next == '{') {
        found.add(parseElements(text, at));
      } else if (next == '"') {  // a date's or a number's text holds no quote or backslash to escape
        int end = text.indexOf('"', at[0] + 1);
        found.add(text.substring(at[0] + 1, end));
        at[0] = end + 1;
      } else {
        int end = at[0];
        while (text.charAt(end) != ',' && text.charAt(end) != '}') {
          end++;
        }
        String element = text.substring(at[0], end);
        found.add(element.equals("NULL") ? null : element);
        at[0] = end;
      }
    }
    at[0]++;  // past its '}'
    return found.toArray();
  }

  private static final JsonFactory JSON = new JsonFactory();

  /**
   * An array of any dimensions as JSON, each element converted as in a list of one dimension and
   * written as the archive writes its type: numbers, booleans, text, null; a float's NaN as "NaN",
   * a date as "2026-01-02" ("infinity").
   */
  static String json(Object[] elements, Function<Object, Object> convert, Schema element) {
    StringWriter text = new StringWriter();
    try (JsonGenerator out = JSON.createGenerator(text)) {
      writeJson(out, elements, convert, element);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return text.toString();
  }

  private static void writeJson(JsonGenerator out, Object value, Function<Object, Object> convert, Schema element)
      throws IOException {
    if (value instanceof Object[] nested) {
      out.writeStartArray();
      for (Object item : nested) {
        writeJson(out, item, convert, element);
      }
      out.writeEndArray();
      return;
    }
    Object converted = value == null ? null : convert.apply(value);
    if (converted == null) {
      out.writeNull();
    } else if (converted instanceof Number count && element.name() != null && element.name().startsWith("io.debezium.time.")) {
      out.writeString(temporalText(element.name(), count.longValue()));
    } else if (converted instanceof NonFinite marker) {
      out.writeString(marker.text());
    } else if (converted instanceof BigDecimal number) {
      out.writeNumber(number.toPlainString());
    } else if (converted instanceof Struct number) {  // a variable-scale decimal
      out.writeNumber(VariableScaleDecimal.toLogical(number).getDecimalValue().orElseThrow().toPlainString());
    } else if (converted instanceof Boolean bool) {
      out.writeBoolean(bool);
    } else if (converted instanceof Float || converted instanceof Double) {
      double number = ((Number) converted).doubleValue();
      if (Double.isFinite(number)) {
        out.writeNumber(converted.toString());  // as Java writes a float: 1.5, not 1.5000000
      } else {
        out.writeString(nonFinite(number));
      }
    } else if (converted instanceof Number number) {
      out.writeNumber(number.longValue());
    } else {
      out.writeString(converted.toString());
    }
  }

  /**
   * An array no list of its column's element type holds (more dimensions than declared, or a
   * numeric's NaN or ±Infinity among its elements), as JSON in the place of the list. Empty, so that
   * it passes the column's schema on its way to NonFiniteNumerics.
   */
  static final class UnheldArray extends AbstractList<Object> {
    private final String json;

    UnheldArray(String json) {
      this.json = json;
    }

    String json() {
      return json;
    }

    @Override
    public Object get(int index) {
      throw new IndexOutOfBoundsException(index);
    }

    @Override
    public int size() {
      return 0;
    }

    @Override
    public boolean equals(Object other) {
      return other instanceof UnheldArray marker && marker.json.equals(json);
    }

    @Override
    public int hashCode() {
      return json.hashCode();
    }
  }

  private static SpecialValueDecimal decimal(RelationalColumn column, Object value) {
    if (value instanceof SpecialValueDecimal number) {
      return number;
    }
    if (value instanceof BigDecimal number) {
      return new SpecialValueDecimal(number);
    }
    if (value instanceof String text) {  // a default value, as the catalog writes it
      String trimmed = text.replaceAll("^'|'(::numeric)?$", "");
      return PostgresValueConverter.toSpecialValue(trimmed).orElseGet(() -> new SpecialValueDecimal(new BigDecimal(trimmed)));
    }
    if (value instanceof Number number) {
      return new SpecialValueDecimal(new BigDecimal(number.toString()));
    }
    throw new DataException("column " + column.dataCollection() + "." + column.name() + ": a numeric given as "
        + value.getClass().getName() + " (" + value + "), which ExactValues does not read");
  }

  /** A numeric as PostgreSQL writes it. */
  private static String text(RelationalColumn column, SpecialValueDecimal number) {
    return number.getDecimalValue().isPresent() ? number.getDecimalValue().get().toPlainString()
        : nonFinite(number.toDouble());
  }

  /** A float's NaN or ±Infinity as PostgreSQL writes it (NaN, Infinity, -Infinity); null if finite. */
  static String nonFinite(double number) {
    return Double.isFinite(number) ? null : Double.isNaN(number) ? "NaN" : number > 0 ? "Infinity" : "-Infinity";
  }

  /** A numeric's NaN or ±Infinity, on its way to NonFiniteNumerics in the place of its decimal. */
  interface NonFinite {
    String text();
  }

  /** Of a numeric of declared scale. */
  static final class NonFiniteDecimal extends BigDecimal implements NonFinite {
    private static final long serialVersionUID = 1L;
    private final String text;

    NonFiniteDecimal(String text) {
      super(0);
      this.text = text;
    }

    @Override
    public String text() {
      return text;
    }

    @Override
    public boolean equals(Object other) {
      return other instanceof NonFiniteDecimal marker && marker.text.equals(text);
    }

    @Override
    public int hashCode() {
      return text.hashCode();
    }
  }

  /** Of an unconstrained numeric. */
  static final class NonFiniteStruct extends Struct implements NonFinite {
    private final String text;

    NonFiniteStruct(Schema schema, String text) {
      super(schema);
      this.text = text;
      put(VariableScaleDecimal.SCALE_FIELD, 0);
      put(VariableScaleDecimal.VALUE_FIELD, new byte[] {0});
    }

    @Override
    public String text() {
      return text;
    }

    @Override
    public boolean equals(Object other) {
      return other instanceof NonFiniteStruct marker && marker.text.equals(text);
    }

    @Override
    public int hashCode() {
      return text.hashCode();
    }
  }

  private static SchemaBuilder optional(RelationalColumn column, SchemaBuilder schema) {
    return column.isOptional() ? schema.optional() : schema;
  }

  /**
   * A date the JDBC driver made: it built the instant from PostgreSQL's year, month and day in the
   * JVM's zone with the Julian-Gregorian calendar, so those fields are read back the same way.
   */
  static int epochDay(java.util.Date date) {
    if (date.getTime() == PGStatement.DATE_POSITIVE_INFINITY) {
      return DATE_INFINITY;
    }
    if (date.getTime() == PGStatement.DATE_NEGATIVE_INFINITY) {
      return DATE_MINUS_INFINITY;
    }
    Calendar calendar = new GregorianCalendar();
    calendar.setTime(date);
    int year = calendar.get(Calendar.ERA) == GregorianCalendar.BC ? 1 - calendar.get(Calendar.YEAR)
        : calendar.get(Calendar.YEAR);
    return Math.toIntExact(LocalDate.of(year, calendar.get(Calendar.MONTH) + 1, calendar.get(Calendar.DAY_OF_MONTH))
        .toEpochDay());
  }

  static int epochDay(RelationalColumn column, Object value) {
    if (value instanceof LocalDate date) {  // the stream
      if (date.equals(PostgresValueConverter.POSITIVE_INFINITY_LOCAL_DATE)) {
        return DATE_INFINITY;
      }
      if (date.equals(PostgresValueConverter.NEGATIVE_INFINITY_LOCAL_DATE)) {
        return DATE_MINUS_INFINITY;
      }
      return Math.toIntExact(date.toEpochDay());
    }
    if (value instanceof java.util.Date date) {  // an incremental snapshot's, through the JDBC driver
      return epochDay(date);
    }
    if (value instanceof String text) {  // a snapshot's (ExactSnapshotQuery), or a default as the catalog writes it
      String trimmed = text.replaceAll("^'|'(::date)?$", "");
      return switch (trimmed) {
        case "infinity" -> DATE_INFINITY;
        case "-infinity" -> DATE_MINUS_INFINITY;
        default -> Math.toIntExact(LocalDate.parse(trimmed, PG_DATE).toEpochDay());
      };
    }
    if (value instanceof Number days) {
      return days.intValue();
    }
    throw new DataException("column " + column.dataCollection() + "." + column.name() + ": a date given as "
        + value.getClass().getName() + " (" + value + "), which ExactValues does not read");
  }
}
