package modelstream.flink;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The data topics and how their records are read, parsed from the text modelstream/topics.py
 * {@code jvm_config} writes: a line per topic in index order, fields separated by TAB:
 * {@code topic, encoding code, message name, data-type field number, default data type}.
 */
final class DataTopics implements Serializable {
    private static final long serialVersionUID = 1L;

    /** One data topic. */
    static final class Topic implements Serializable {
        private static final long serialVersionUID = 1L;

        final int index;
        final String name;
        final int encoding;
        final String message;
        final int dataTypeField;
        final String defaultDataType;
        /** What a record without a content-type header is, unless the topic is AUTO. */
        final RecordEncoding declared;
        /** What a Confluent-framed record of an AUTO topic is. */
        final RecordEncoding autoProtobuf;

        Topic(int index, String name, int encoding, String message, int dataTypeField,
                String defaultDataType) {
            this.index = index;
            this.name = name;
            this.encoding = encoding;
            this.message = message;
            this.dataTypeField = dataTypeField;
            this.defaultDataType = defaultDataType;
            this.autoProtobuf = new RecordEncoding(RecordEncoding.PROTOBUF, message);
            switch (encoding) {
                case RecordEncoding.WINE:
                    declared = RecordEncoding.WINE_RECORD;
                    break;
                case RecordEncoding.JSON:
                    declared = RecordEncoding.JSON_RECORD;
                    break;
                case RecordEncoding.OIP:
                    declared = RecordEncoding.OIP_RECORD;
                    break;
                case RecordEncoding.FEEDBACK:
                    declared = RecordEncoding.FEEDBACK_RECORD;
                    break;
                case RecordEncoding.PROTOBUF:
                    declared = autoProtobuf;
                    break;
                case RecordEncoding.AUTO:
                    declared = null;
                    break;
                default:
                    throw new IllegalArgumentException("topic " + name + ": no topic encoding " + encoding);
            }
        }
    }

    private final List<Topic> topics;
    private final Map<String, Topic> byName = new HashMap<>();

    private DataTopics(List<Topic> topics) {
        this.topics = topics;
        for (Topic topic : topics) {
            if (byName.put(topic.name, topic) != null) {
                throw new IllegalArgumentException("data topic " + topic.name + " listed twice");
            }
        }
    }

    /** Parses the configuration; throws IllegalArgumentException naming the line that is wrong. */
    static DataTopics parse(String config) {
        List<Topic> topics = new ArrayList<>();
        for (String line : config.split("\n")) {
            if (line.isEmpty()) continue;
            String[] fields = line.split("\t", -1);
            if (fields.length != 5 || fields[0].isEmpty()) {
                throw new IllegalArgumentException("data topic line " + (topics.size() + 1)
                        + " is not topic, encoding, message, data-type field, data type: " + line);
            }
            try {
                topics.add(new Topic(topics.size(), fields[0], Integer.parseInt(fields[1]), fields[2],
                        Integer.parseInt(fields[3]), fields[4]));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("data topic line " + (topics.size() + 1) + ": " + line, e);
            }
        }
        if (topics.isEmpty() || topics.size() > 0xffff) {
            throw new IllegalArgumentException("between 1 and 65535 data topics, not " + topics.size());
        }
        return new DataTopics(List.copyOf(topics));
    }

    /** The topic named {@code name}; IllegalArgumentException if it is not a configured data topic. */
    Topic named(String name) {
        Topic topic = byName.get(name);
        if (topic == null) {
            throw new IllegalArgumentException("record of topic " + name + ", which is not a data topic");
        }
        return topic;
    }

    Topic get(int index) {
        return topics.get(index);
    }

    int size() {
        return topics.size();
    }
}
