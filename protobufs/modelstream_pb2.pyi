from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelDescriptor(_message.Message):
    __slots__ = ("name", "description", "dataType", "modeltype", "data", "location", "version", "input_name", "output_name", "signature", "input_fields", "staged", "quality", "publisher_signature", "signing_key_id", "reference_profile")
    class ModelType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        TENSORFLOW: _ClassVar[ModelDescriptor.ModelType]
        TENSORFLOWSAVED: _ClassVar[ModelDescriptor.ModelType]
        PMML: _ClassVar[ModelDescriptor.ModelType]
        ONNX: _ClassVar[ModelDescriptor.ModelType]
    TENSORFLOW: ModelDescriptor.ModelType
    TENSORFLOWSAVED: ModelDescriptor.ModelType
    PMML: ModelDescriptor.ModelType
    ONNX: ModelDescriptor.ModelType
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    DATATYPE_FIELD_NUMBER: _ClassVar[int]
    MODELTYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    INPUT_NAME_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_NAME_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELDS_FIELD_NUMBER: _ClassVar[int]
    STAGED_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    PUBLISHER_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    SIGNING_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_PROFILE_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    dataType: str
    modeltype: ModelDescriptor.ModelType
    data: bytes
    location: str
    version: str
    input_name: str
    output_name: str
    signature: str
    input_fields: _containers.RepeatedScalarFieldContainer[str]
    staged: bool
    quality: float
    publisher_signature: bytes
    signing_key_id: str
    reference_profile: ReferenceProfile
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., dataType: _Optional[str] = ..., modeltype: _Optional[_Union[ModelDescriptor.ModelType, str]] = ..., data: _Optional[bytes] = ..., location: _Optional[str] = ..., version: _Optional[str] = ..., input_name: _Optional[str] = ..., output_name: _Optional[str] = ..., signature: _Optional[str] = ..., input_fields: _Optional[_Iterable[str]] = ..., staged: bool = ..., quality: _Optional[float] = ..., publisher_signature: _Optional[bytes] = ..., signing_key_id: _Optional[str] = ..., reference_profile: _Optional[_Union[ReferenceProfile, _Mapping]] = ...) -> None: ...

class FeatureProfile(_message.Message):
    __slots__ = ("name", "edges", "categories", "proportions")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EDGES_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    PROPORTIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    edges: _containers.RepeatedScalarFieldContainer[float]
    categories: _containers.RepeatedScalarFieldContainer[str]
    proportions: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, name: _Optional[str] = ..., edges: _Optional[_Iterable[float]] = ..., categories: _Optional[_Iterable[str]] = ..., proportions: _Optional[_Iterable[float]] = ...) -> None: ...

class ReferenceProfile(_message.Message):
    __slots__ = ("features", "prediction", "records", "source")
    class Source(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        REFERENCE: _ClassVar[ReferenceProfile.Source]
        PMML_MODEL_STATS: _ClassVar[ReferenceProfile.Source]
        WARM_UP: _ClassVar[ReferenceProfile.Source]
    REFERENCE: ReferenceProfile.Source
    PMML_MODEL_STATS: ReferenceProfile.Source
    WARM_UP: ReferenceProfile.Source
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    features: _containers.RepeatedCompositeFieldContainer[FeatureProfile]
    prediction: FeatureProfile
    records: int
    source: ReferenceProfile.Source
    def __init__(self, features: _Optional[_Iterable[_Union[FeatureProfile, _Mapping]]] = ..., prediction: _Optional[_Union[FeatureProfile, _Mapping]] = ..., records: _Optional[int] = ..., source: _Optional[_Union[ReferenceProfile.Source, str]] = ...) -> None: ...

class ServedResults(_message.Message):
    __slots__ = ("record_ids", "stored_at", "predictions", "versions", "labels", "next", "classifier", "stored_at_raw", "predictions_raw")
    RECORD_IDS_FIELD_NUMBER: _ClassVar[int]
    STORED_AT_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    NEXT_FIELD_NUMBER: _ClassVar[int]
    CLASSIFIER_FIELD_NUMBER: _ClassVar[int]
    STORED_AT_RAW_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_RAW_FIELD_NUMBER: _ClassVar[int]
    record_ids: _containers.RepeatedScalarFieldContainer[str]
    stored_at: _containers.RepeatedScalarFieldContainer[int]
    predictions: _containers.RepeatedScalarFieldContainer[float]
    versions: _containers.RepeatedScalarFieldContainer[str]
    labels: _containers.RepeatedScalarFieldContainer[str]
    next: int
    classifier: _containers.RepeatedScalarFieldContainer[bool]
    stored_at_raw: bytes
    predictions_raw: bytes
    def __init__(self, record_ids: _Optional[_Iterable[str]] = ..., stored_at: _Optional[_Iterable[int]] = ..., predictions: _Optional[_Iterable[float]] = ..., versions: _Optional[_Iterable[str]] = ..., labels: _Optional[_Iterable[str]] = ..., next: _Optional[int] = ..., classifier: _Optional[_Iterable[bool]] = ..., stored_at_raw: _Optional[bytes] = ..., predictions_raw: _Optional[bytes] = ...) -> None: ...

class DriftReport(_message.Message):
    __slots__ = ("status", "psi", "prediction_psi", "flagged", "windows", "window_records", "profile_source", "warming_up", "data_type", "model_version", "changed_at", "window", "warm_up_profile")
    class PsiEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PSI_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_PSI_FIELD_NUMBER: _ClassVar[int]
    FLAGGED_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_RECORDS_FIELD_NUMBER: _ClassVar[int]
    PROFILE_SOURCE_FIELD_NUMBER: _ClassVar[int]
    WARMING_UP_FIELD_NUMBER: _ClassVar[int]
    DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    WARM_UP_PROFILE_FIELD_NUMBER: _ClassVar[int]
    status: str
    psi: _containers.ScalarMap[str, float]
    prediction_psi: float
    flagged: _containers.RepeatedScalarFieldContainer[str]
    windows: int
    window_records: int
    profile_source: ReferenceProfile.Source
    warming_up: bool
    data_type: str
    model_version: str
    changed_at: int
    window: DriftWindow
    warm_up_profile: ReferenceProfile
    def __init__(self, status: _Optional[str] = ..., psi: _Optional[_Mapping[str, float]] = ..., prediction_psi: _Optional[float] = ..., flagged: _Optional[_Iterable[str]] = ..., windows: _Optional[int] = ..., window_records: _Optional[int] = ..., profile_source: _Optional[_Union[ReferenceProfile.Source, str]] = ..., warming_up: bool = ..., data_type: _Optional[str] = ..., model_version: _Optional[str] = ..., changed_at: _Optional[int] = ..., window: _Optional[_Union[DriftWindow, _Mapping]] = ..., warm_up_profile: _Optional[_Union[ReferenceProfile, _Mapping]] = ...) -> None: ...

class DriftWindow(_message.Message):
    __slots__ = ("records", "counts", "pending", "streak")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    STREAK_FIELD_NUMBER: _ClassVar[int]
    records: int
    counts: _containers.RepeatedScalarFieldContainer[int]
    pending: str
    streak: int
    def __init__(self, records: _Optional[int] = ..., counts: _Optional[_Iterable[int]] = ..., pending: _Optional[str] = ..., streak: _Optional[int] = ...) -> None: ...

class WineRecord(_message.Message):
    __slots__ = ("fixed_acidity", "volatile_acidity", "citric_acid", "residual_sugar", "chlorides", "free_sulfur_dioxide", "total_sulfur_dioxide", "density", "pH", "sulphates", "alcohol", "dataType", "ts", "record_id")
    FIXED_ACIDITY_FIELD_NUMBER: _ClassVar[int]
    VOLATILE_ACIDITY_FIELD_NUMBER: _ClassVar[int]
    CITRIC_ACID_FIELD_NUMBER: _ClassVar[int]
    RESIDUAL_SUGAR_FIELD_NUMBER: _ClassVar[int]
    CHLORIDES_FIELD_NUMBER: _ClassVar[int]
    FREE_SULFUR_DIOXIDE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SULFUR_DIOXIDE_FIELD_NUMBER: _ClassVar[int]
    DENSITY_FIELD_NUMBER: _ClassVar[int]
    PH_FIELD_NUMBER: _ClassVar[int]
    SULPHATES_FIELD_NUMBER: _ClassVar[int]
    ALCOHOL_FIELD_NUMBER: _ClassVar[int]
    DATATYPE_FIELD_NUMBER: _ClassVar[int]
    TS_FIELD_NUMBER: _ClassVar[int]
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    fixed_acidity: float
    volatile_acidity: float
    citric_acid: float
    residual_sugar: float
    chlorides: float
    free_sulfur_dioxide: float
    total_sulfur_dioxide: float
    density: float
    pH: float
    sulphates: float
    alcohol: float
    dataType: str
    ts: int
    record_id: str
    def __init__(self, fixed_acidity: _Optional[float] = ..., volatile_acidity: _Optional[float] = ..., citric_acid: _Optional[float] = ..., residual_sugar: _Optional[float] = ..., chlorides: _Optional[float] = ..., free_sulfur_dioxide: _Optional[float] = ..., total_sulfur_dioxide: _Optional[float] = ..., density: _Optional[float] = ..., pH: _Optional[float] = ..., sulphates: _Optional[float] = ..., alcohol: _Optional[float] = ..., dataType: _Optional[str] = ..., ts: _Optional[int] = ..., record_id: _Optional[str] = ...) -> None: ...

class ScoreResult(_message.Message):
    __slots__ = ("model_name", "model_version", "data_type", "record_id", "record_ts", "scored_at", "scoring_time_ns", "label", "value", "probabilities", "model_type", "source_topic", "source_partition", "source_offset", "outputs", "role", "policy_version", "members", "speculation")
    class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        SERVED: _ClassVar[ScoreResult.Role]
        SHADOW: _ClassVar[ScoreResult.Role]
        MEMBER: _ClassVar[ScoreResult.Role]
        LATE: _ClassVar[ScoreResult.Role]
    SERVED: ScoreResult.Role
    SHADOW: ScoreResult.Role
    MEMBER: ScoreResult.Role
    LATE: ScoreResult.Role
    class Speculation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        NOT_SPECULATIVE: _ClassVar[ScoreResult.Speculation]
        PRIMARY_IN_TIME: _ClassVar[ScoreResult.Speculation]
        FALLBACK: _ClassVar[ScoreResult.Speculation]
    NOT_SPECULATIVE: ScoreResult.Speculation
    PRIMARY_IN_TIME: ScoreResult.Speculation
    FALLBACK: ScoreResult.Speculation
    class ProbabilitiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class OutputsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: OutputTensor
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[OutputTensor, _Mapping]] = ...) -> None: ...
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    RECORD_TS_FIELD_NUMBER: _ClassVar[int]
    SCORED_AT_FIELD_NUMBER: _ClassVar[int]
    SCORING_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    MODEL_TYPE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_TOPIC_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PARTITION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_OFFSET_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    SPECULATION_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_version: str
    data_type: str
    record_id: str
    record_ts: int
    scored_at: int
    scoring_time_ns: int
    label: str
    value: float
    probabilities: _containers.ScalarMap[str, float]
    model_type: ModelDescriptor.ModelType
    source_topic: str
    source_partition: int
    source_offset: int
    outputs: _containers.MessageMap[str, OutputTensor]
    role: ScoreResult.Role
    policy_version: int
    members: _containers.RepeatedScalarFieldContainer[str]
    speculation: ScoreResult.Speculation
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., data_type: _Optional[str] = ..., record_id: _Optional[str] = ..., record_ts: _Optional[int] = ..., scored_at: _Optional[int] = ..., scoring_time_ns: _Optional[int] = ..., label: _Optional[str] = ..., value: _Optional[float] = ..., probabilities: _Optional[_Mapping[str, float]] = ..., model_type: _Optional[_Union[ModelDescriptor.ModelType, str]] = ..., source_topic: _Optional[str] = ..., source_partition: _Optional[int] = ..., source_offset: _Optional[int] = ..., outputs: _Optional[_Mapping[str, OutputTensor]] = ..., role: _Optional[_Union[ScoreResult.Role, str]] = ..., policy_version: _Optional[int] = ..., members: _Optional[_Iterable[str]] = ..., speculation: _Optional[_Union[ScoreResult.Speculation, str]] = ...) -> None: ...

class RolloutPolicy(_message.Message):
    __slots__ = ("data_type", "version", "salt", "serve", "ramp", "shadow", "retain", "action", "gate_records", "gated_versions", "ensemble", "speculative", "publisher_signature", "signing_key_id")
    class Action(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        ROUTE: _ClassVar[RolloutPolicy.Action]
        ROLLBACK: _ClassVar[RolloutPolicy.Action]
        PROMOTE: _ClassVar[RolloutPolicy.Action]
    ROUTE: RolloutPolicy.Action
    ROLLBACK: RolloutPolicy.Action
    PROMOTE: RolloutPolicy.Action
    DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SALT_FIELD_NUMBER: _ClassVar[int]
    SERVE_FIELD_NUMBER: _ClassVar[int]
    RAMP_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    RETAIN_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    GATE_RECORDS_FIELD_NUMBER: _ClassVar[int]
    GATED_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    ENSEMBLE_FIELD_NUMBER: _ClassVar[int]
    SPECULATIVE_FIELD_NUMBER: _ClassVar[int]
    PUBLISHER_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    SIGNING_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    data_type: str
    version: int
    salt: str
    serve: _containers.RepeatedCompositeFieldContainer[Route]
    ramp: Ramp
    shadow: _containers.RepeatedCompositeFieldContainer[Route]
    retain: int
    action: RolloutPolicy.Action
    gate_records: int
    gated_versions: _containers.RepeatedScalarFieldContainer[str]
    ensemble: Ensemble
    speculative: Speculative
    publisher_signature: bytes
    signing_key_id: str
    def __init__(self, data_type: _Optional[str] = ..., version: _Optional[int] = ..., salt: _Optional[str] = ..., serve: _Optional[_Iterable[_Union[Route, _Mapping]]] = ..., ramp: _Optional[_Union[Ramp, _Mapping]] = ..., shadow: _Optional[_Iterable[_Union[Route, _Mapping]]] = ..., retain: _Optional[int] = ..., action: _Optional[_Union[RolloutPolicy.Action, str]] = ..., gate_records: _Optional[int] = ..., gated_versions: _Optional[_Iterable[str]] = ..., ensemble: _Optional[_Union[Ensemble, _Mapping]] = ..., speculative: _Optional[_Union[Speculative, _Mapping]] = ..., publisher_signature: _Optional[bytes] = ..., signing_key_id: _Optional[str] = ...) -> None: ...

class PerformancePolicy(_message.Message):
    __slots__ = ("data_type", "version", "candidates", "min_labelled", "keep_top", "retain", "publisher_signature", "signing_key_id")
    DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    MIN_LABELLED_FIELD_NUMBER: _ClassVar[int]
    KEEP_TOP_FIELD_NUMBER: _ClassVar[int]
    RETAIN_FIELD_NUMBER: _ClassVar[int]
    PUBLISHER_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    SIGNING_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    data_type: str
    version: int
    candidates: _containers.RepeatedScalarFieldContainer[str]
    min_labelled: int
    keep_top: int
    retain: int
    publisher_signature: bytes
    signing_key_id: str
    def __init__(self, data_type: _Optional[str] = ..., version: _Optional[int] = ..., candidates: _Optional[_Iterable[str]] = ..., min_labelled: _Optional[int] = ..., keep_top: _Optional[int] = ..., retain: _Optional[int] = ..., publisher_signature: _Optional[bytes] = ..., signing_key_id: _Optional[str] = ...) -> None: ...

class Route(_message.Message):
    __slots__ = ("model_version", "weight")
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    model_version: str
    weight: float
    def __init__(self, model_version: _Optional[str] = ..., weight: _Optional[float] = ...) -> None: ...

class Ensemble(_message.Message):
    __slots__ = ("method", "members", "member_results", "name")
    class Method(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        VOTE: _ClassVar[Ensemble.Method]
        MEAN: _ClassVar[Ensemble.Method]
        MAX_CONFIDENCE: _ClassVar[Ensemble.Method]
        BEST_QUALITY: _ClassVar[Ensemble.Method]
    VOTE: Ensemble.Method
    MEAN: Ensemble.Method
    MAX_CONFIDENCE: Ensemble.Method
    BEST_QUALITY: Ensemble.Method
    METHOD_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    MEMBER_RESULTS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    method: Ensemble.Method
    members: _containers.RepeatedCompositeFieldContainer[Route]
    member_results: bool
    name: str
    def __init__(self, method: _Optional[_Union[Ensemble.Method, str]] = ..., members: _Optional[_Iterable[_Union[Route, _Mapping]]] = ..., member_results: bool = ..., name: _Optional[str] = ...) -> None: ...

class Speculative(_message.Message):
    __slots__ = ("primary_version", "fallback_version", "deadline_ms")
    PRIMARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_VERSION_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    primary_version: str
    fallback_version: str
    deadline_ms: int
    def __init__(self, primary_version: _Optional[str] = ..., fallback_version: _Optional[str] = ..., deadline_ms: _Optional[int] = ...) -> None: ...

class Ramp(_message.Message):
    __slots__ = ("base_version", "candidate_version", "start_percent", "end_percent", "start_ts", "end_ts")
    BASE_VERSION_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    START_PERCENT_FIELD_NUMBER: _ClassVar[int]
    END_PERCENT_FIELD_NUMBER: _ClassVar[int]
    START_TS_FIELD_NUMBER: _ClassVar[int]
    END_TS_FIELD_NUMBER: _ClassVar[int]
    base_version: str
    candidate_version: str
    start_percent: float
    end_percent: float
    start_ts: int
    end_ts: int
    def __init__(self, base_version: _Optional[str] = ..., candidate_version: _Optional[str] = ..., start_percent: _Optional[float] = ..., end_percent: _Optional[float] = ..., start_ts: _Optional[int] = ..., end_ts: _Optional[int] = ...) -> None: ...

class OutputTensor(_message.Message):
    __slots__ = ("shape", "values", "strings")
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    STRINGS_FIELD_NUMBER: _ClassVar[int]
    shape: _containers.RepeatedScalarFieldContainer[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    strings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, shape: _Optional[_Iterable[int]] = ..., values: _Optional[_Iterable[float]] = ..., strings: _Optional[_Iterable[str]] = ...) -> None: ...

class RecordSchema(_message.Message):
    __slots__ = ("data_type", "message_name", "file_descriptor_set")
    DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_NAME_FIELD_NUMBER: _ClassVar[int]
    FILE_DESCRIPTOR_SET_FIELD_NUMBER: _ClassVar[int]
    data_type: str
    message_name: str
    file_descriptor_set: bytes
    def __init__(self, data_type: _Optional[str] = ..., message_name: _Optional[str] = ..., file_descriptor_set: _Optional[bytes] = ...) -> None: ...

class ServingModel(_message.Message):
    __slots__ = ("name", "description", "model_type", "version", "since")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    MODEL_TYPE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    model_type: ModelDescriptor.ModelType
    version: str
    since: int
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., model_type: _Optional[_Union[ModelDescriptor.ModelType, str]] = ..., version: _Optional[str] = ..., since: _Optional[int] = ...) -> None: ...

class ModelStats(_message.Message):
    __slots__ = ("model", "usage", "total_ns", "min_ns", "max_ns", "errors", "last_scored_at", "until", "time_buckets", "p50_ns", "p99_ns", "share", "role", "gate_clean", "quality", "drift", "memory_bytes", "cold_loads", "load_ns")
    class TimeBucketsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    MODEL_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_NS_FIELD_NUMBER: _ClassVar[int]
    MIN_NS_FIELD_NUMBER: _ClassVar[int]
    MAX_NS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    LAST_SCORED_AT_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    TIME_BUCKETS_FIELD_NUMBER: _ClassVar[int]
    P50_NS_FIELD_NUMBER: _ClassVar[int]
    P99_NS_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    GATE_CLEAN_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    DRIFT_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    COLD_LOADS_FIELD_NUMBER: _ClassVar[int]
    LOAD_NS_FIELD_NUMBER: _ClassVar[int]
    model: ServingModel
    usage: int
    total_ns: int
    min_ns: int
    max_ns: int
    errors: int
    last_scored_at: int
    until: int
    time_buckets: _containers.ScalarMap[int, int]
    p50_ns: int
    p99_ns: int
    share: float
    role: str
    gate_clean: int
    quality: LiveQuality
    drift: DriftReport
    memory_bytes: int
    cold_loads: int
    load_ns: int
    def __init__(self, model: _Optional[_Union[ServingModel, _Mapping]] = ..., usage: _Optional[int] = ..., total_ns: _Optional[int] = ..., min_ns: _Optional[int] = ..., max_ns: _Optional[int] = ..., errors: _Optional[int] = ..., last_scored_at: _Optional[int] = ..., until: _Optional[int] = ..., time_buckets: _Optional[_Mapping[int, int]] = ..., p50_ns: _Optional[int] = ..., p99_ns: _Optional[int] = ..., share: _Optional[float] = ..., role: _Optional[str] = ..., gate_clean: _Optional[int] = ..., quality: _Optional[_Union[LiveQuality, _Mapping]] = ..., drift: _Optional[_Union[DriftReport, _Mapping]] = ..., memory_bytes: _Optional[int] = ..., cold_loads: _Optional[int] = ..., load_ns: _Optional[int] = ...) -> None: ...

class LiveQuality(_message.Message):
    __slots__ = ("labelled", "correct", "abs_error_sum", "squared_error_sum", "regression")
    LABELLED_FIELD_NUMBER: _ClassVar[int]
    CORRECT_FIELD_NUMBER: _ClassVar[int]
    ABS_ERROR_SUM_FIELD_NUMBER: _ClassVar[int]
    SQUARED_ERROR_SUM_FIELD_NUMBER: _ClassVar[int]
    REGRESSION_FIELD_NUMBER: _ClassVar[int]
    labelled: int
    correct: int
    abs_error_sum: float
    squared_error_sum: float
    regression: bool
    def __init__(self, labelled: _Optional[int] = ..., correct: _Optional[int] = ..., abs_error_sum: _Optional[float] = ..., squared_error_sum: _Optional[float] = ..., regression: bool = ...) -> None: ...

class StatsSnapshot(_message.Message):
    __slots__ = ("data_type", "current", "history", "published_at", "versions", "policy", "drift", "feedback_unmatched", "feedback_invalid")
    DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_AT_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    DRIFT_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_UNMATCHED_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_INVALID_FIELD_NUMBER: _ClassVar[int]
    data_type: str
    current: ModelStats
    history: _containers.RepeatedCompositeFieldContainer[ModelStats]
    published_at: int
    versions: _containers.RepeatedCompositeFieldContainer[ModelStats]
    policy: RolloutPolicy
    drift: DriftReport
    feedback_unmatched: int
    feedback_invalid: int
    def __init__(self, data_type: _Optional[str] = ..., current: _Optional[_Union[ModelStats, _Mapping]] = ..., history: _Optional[_Iterable[_Union[ModelStats, _Mapping]]] = ..., published_at: _Optional[int] = ..., versions: _Optional[_Iterable[_Union[ModelStats, _Mapping]]] = ..., policy: _Optional[_Union[RolloutPolicy, _Mapping]] = ..., drift: _Optional[_Union[DriftReport, _Mapping]] = ..., feedback_unmatched: _Optional[int] = ..., feedback_invalid: _Optional[int] = ...) -> None: ...

class DeadLetter(_message.Message):
    __slots__ = ("reason", "message", "source_topic", "partition", "offset", "raw", "data_type", "failed_at", "model_name", "model_version")
    class Reason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        UNSPECIFIED: _ClassVar[DeadLetter.Reason]
        RECORD_UNDECODABLE: _ClassVar[DeadLetter.Reason]
        MODEL_UNDECODABLE: _ClassVar[DeadLetter.Reason]
        UNKNOWN_MODEL_TYPE: _ClassVar[DeadLetter.Reason]
        MODEL_BUILD_FAILED: _ClassVar[DeadLetter.Reason]
        MODEL_VALIDATION_FAILED: _ClassVar[DeadLetter.Reason]
        RECORD_INVALID: _ClassVar[DeadLetter.Reason]
        NO_MODEL: _ClassVar[DeadLetter.Reason]
        SCORING_FAILED: _ClassVar[DeadLetter.Reason]
        MODEL_INPUTS_UNBOUND: _ClassVar[DeadLetter.Reason]
        SCHEMA_INVALID: _ClassVar[DeadLetter.Reason]
        POLICY_INVALID: _ClassVar[DeadLetter.Reason]
        MODEL_UNTRUSTED: _ClassVar[DeadLetter.Reason]
        MODEL_UNSAFE: _ClassVar[DeadLetter.Reason]
        MODEL_TOO_LARGE: _ClassVar[DeadLetter.Reason]
        FEEDBACK_INVALID: _ClassVar[DeadLetter.Reason]
    UNSPECIFIED: DeadLetter.Reason
    RECORD_UNDECODABLE: DeadLetter.Reason
    MODEL_UNDECODABLE: DeadLetter.Reason
    UNKNOWN_MODEL_TYPE: DeadLetter.Reason
    MODEL_BUILD_FAILED: DeadLetter.Reason
    MODEL_VALIDATION_FAILED: DeadLetter.Reason
    RECORD_INVALID: DeadLetter.Reason
    NO_MODEL: DeadLetter.Reason
    SCORING_FAILED: DeadLetter.Reason
    MODEL_INPUTS_UNBOUND: DeadLetter.Reason
    SCHEMA_INVALID: DeadLetter.Reason
    POLICY_INVALID: DeadLetter.Reason
    MODEL_UNTRUSTED: DeadLetter.Reason
    MODEL_UNSAFE: DeadLetter.Reason
    MODEL_TOO_LARGE: DeadLetter.Reason
    FEEDBACK_INVALID: DeadLetter.Reason
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_TOPIC_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    FAILED_AT_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    reason: DeadLetter.Reason
    message: str
    source_topic: str
    partition: int
    offset: int
    raw: bytes
    data_type: str
    failed_at: int
    model_name: str
    model_version: str
    def __init__(self, reason: _Optional[_Union[DeadLetter.Reason, str]] = ..., message: _Optional[str] = ..., source_topic: _Optional[str] = ..., partition: _Optional[int] = ..., offset: _Optional[int] = ..., raw: _Optional[bytes] = ..., data_type: _Optional[str] = ..., failed_at: _Optional[int] = ..., model_name: _Optional[str] = ..., model_version: _Optional[str] = ...) -> None: ...
