package modelstream.flink;

import java.nio.charset.StandardCharsets;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.kafka.shaded.org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.flink.kafka.shaded.org.apache.kafka.common.header.Header;
import org.apache.flink.kafka.shaded.org.apache.kafka.common.header.Headers;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;

/**
 * Reads a record of any data topic as Row(dataType STRING, framedRecord BYTES): its data type
 * ({@link DataType}) and the record framed with its encoding ({@link RecordEncoding}), topic, partition,
 * offset, timestamp, key and value ({@link RecordFrame}), for {@link MicroBatchOperator}.
 *
 * <p>Configured by the text of modelstream/topics.py {@code jvm_config} ({@link DataTopics}). The
 * {@code content-type} and {@code data-type} headers, when present, override what the topic says.
 */
public final class DataRecordDeserializationSchema implements KafkaRecordDeserializationSchema<Row> {
    private static final long serialVersionUID = 1L;
    static final String CONTENT_TYPE = "content-type";
    static final String DATA_TYPE = "data-type";
    private static final byte[] EMPTY = new byte[0];

    private final DataTopics topics;

    public DataRecordDeserializationSchema(String topicConfig) {
        this.topics = DataTopics.parse(topicConfig);
    }

    @Override
    public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<Row> out) {
        out.collect(read(record));
    }

    Row read(ConsumerRecord<byte[], byte[]> record) {
        DataTopics.Topic topic = topics.named(record.topic());
        byte[] value = record.value() == null ? EMPTY : record.value();
        Headers headers = record.headers();
        RecordEncoding encoding = RecordEncoding.of(header(headers, CONTENT_TYPE), topic, value);
        String dataType = DataType.of(header(headers, DATA_TYPE), encoding, topic, value);
        byte[] framed = RecordFrame.of(encoding, topic.index, record.partition(), record.offset(),
                record.timestamp(), record.key(), value);
        return Row.of(dataType, framed);
    }

    /** The UTF-8 value of the last header {@code name}; null when there is none. */
    static String header(Headers headers, String name) {
        Header header = headers == null ? null : headers.lastHeader(name);
        if (header == null || header.value() == null) return null;
        return new String(header.value(), StandardCharsets.UTF_8);
    }

    @Override
    public TypeInformation<Row> getProducedType() {
        return Types.ROW(Types.STRING, PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO);
    }
}
