"""Project config: which files to load and how their columns map onto the canonical ones.

A config file is YAML (see ``examples/``). Paths inside it are relative to
``data_root``, which is itself relative to the config file's folder. The
built-in demo config (:func:`demo_config`) points at generated data in the
workdir. A source is either files (``path``) or a SQL database (``database`` +
``table`` or ``query``, docs/database_source.md); database credentials are never
in the file, only the names of the environment variables that hold them. The
transactions source may name an ``inbox``: a folder of new deliveries in the same
format, loaded incrementally (orchestration/sensors.py) and by every full load.
The sources' part of the config is in ``config_sources.py`` (re-exported here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from orchestration.io.config_sources import (  # noqa: F401 (re-exported)
    CANONICAL,
    CUSTOMER_COLUMNS,
    ENV_NAME,
    EVENT_COLUMNS,
    FILE_ONLY,
    REQUIRED,
    TRANSACTION_COLUMNS,
    ConfigError,
    DatabaseConfig,
    FileFormat,
    InboxConfig,
    IncrementalConfig,
    SourceConfig,
    parse_url,
)

Algorithm = Literal["kmeans", "ward", "hdbscan", "dbscan"]


class GroundTruthConfig(BaseModel):
    """A file of known labels per customer (e.g. the demo generator's personas).

    Only for evaluation: the candidates table gets each algorithm's adjusted Rand
    index against ``segment_column``, and the churn evaluation the ROC AUC against
    ``churn_column``. Nothing is trained on it.
    """

    model_config = ConfigDict(extra="forbid")

    path: str  # relative to data_root
    customer_id_column: str = "customer_id"
    segment_column: str | None = "persona"
    churn_column: str | None = "churned"


class SegmentationConfig(BaseModel):
    """How the segmentation candidates are fitted and the production one chosen (ml/segmentation.py)."""

    model_config = ConfigDict(extra="forbid")

    # Candidates fitted by the refit asset `segmentation_model`.
    algorithms: list[Algorithm] = Field(
        default_factory=lambda: ["kmeans", "ward", "hdbscan", "dbscan"], min_length=1
    )
    # "auto" = the documented selection rule; or the algorithm to use in production.
    production: Literal["auto", "kmeans", "ward", "hdbscan", "dbscan"] = "auto"
    # Feature columns of features.customer_features; null = feature_groups decide.
    features: list[str] | None = None
    feature_groups: list[Literal["behavioural", "engagement", "demographics"]] = Field(
        default_factory=lambda: ["behavioural"], min_length=1
    )
    # Extra clusterer parameters per algorithm, e.g. {kmeans: {k_range: [3, 8]}}.
    params: dict[Algorithm, dict[str, Any]] = Field(default_factory=dict)
    # cap on the metric sample: all customers up to 5,000, then a quarter, up to this
    eval_size: int = Field(default=10_000, ge=100)
    n_resamples: int = Field(default=5, ge=0)  # bootstrap resamples for stability
    resample_size: int = Field(default=10_000, ge=100)
    min_stability: float = Field(default=0.75, ge=0, le=1)
    max_noise_share: float = Field(default=0.10, ge=0, le=1)
    min_segment_share: float = Field(default=0.01, ge=0, le=1)
    # Business constraints on the production segmentation (ml/segmentation/selection.py).
    min_segments: int = Field(default=4, ge=2, le=30)
    max_segments: int = Field(default=8, ge=2, le=30)
    max_segment_share: float = Field(default=0.45, gt=0, le=1)
    random_state: int = 0

    @model_validator(mode="after")
    def _check(self) -> SegmentationConfig:
        if self.production != "auto" and self.production not in self.algorithms:
            raise ValueError(
                f"segmentation.production {self.production!r} is not among "
                f"segmentation.algorithms {self.algorithms}"
            )
        if self.min_segments > self.max_segments:
            raise ValueError(
                f"segmentation.min_segments ({self.min_segments}) is above "
                f"segmentation.max_segments ({self.max_segments})"
            )
        return self


class ScoringConfig(BaseModel):
    """CLV, probability alive and churn (ml/scores.py); time unit: days."""

    model_config = ConfigDict(extra="forbid")

    # Churn = no purchase within this many days after the cut-off.
    churn_horizon_days: int = Field(default=90, ge=7, le=730)
    # CLV over this many days, discounted monthly at annual_discount_rate.
    clv_horizon_days: int = Field(default=365, ge=30, le=3650)
    annual_discount_rate: float = Field(default=0.10, ge=0, le=1)
    # churn probability < first = low, >= second = high, else medium.
    risk_band_thresholds: tuple[float, float] = (0.3, 0.6)
    # Fewer labelled customers (or one class) at a cut-off -> the documented fallback.
    min_training_customers: int = Field(default=200, ge=10)
    random_state: int = 0

    @model_validator(mode="after")
    def _check(self) -> ScoringConfig:
        low, high = self.risk_band_thresholds
        if not 0 <= low <= high <= 1:
            raise ValueError(
                "scoring.risk_band_thresholds must be [low, high] with 0 <= low <= high <= 1"
            )
        return self


class CampaignConfig(BaseModel):
    """Campaign selection (marts.mart_campaign_targets); per-segment actions and save
    rates are in the playbook seed dbt_project/seeds/segment_actions.csv."""

    model_config = ConfigDict(extra="forbid")

    # Customers whose expected value (CLV x churn probability x save rate) is below it
    # are not selected.
    min_expected_value: float = Field(default=1.0, ge=0)


class ExportConfig(BaseModel):
    """The Power BI export (orchestration/publish/export.py)."""

    model_config = ConfigDict(extra="forbid")

    csv: bool = False  # also write <table>.csv next to the Parquet files
    keep_versions: int = Field(default=3, ge=1)  # published versions kept on disk
    # Who may read the published export (orchestration/io/permissions.py): owner (folders
    # 0700, files 0600), group (0750 / 0640: e.g. a Power BI gateway account's group) or
    # everyone (0755 / 0644). The rest of the workdir stays the owner's alone.
    access: Literal["owner", "group", "everyone"] = "owner"


class CurrencyConfig(BaseModel):
    """How amounts of money are shown: the HTML report, the run summary and the Power BI
    model's format strings (``python -m orchestration.publish.powerbi_model``). The data
    holds no currency; this only labels it. ``currency: EUR`` is short for ``{code: EUR}``.
    """

    model_config = ConfigDict(extra="forbid")

    code: str = Field(default="USD", pattern=r"^[A-Z]{3}$")  # ISO 4217
    # Written before the amount ("$1,234.56"); null = the code and a space ("EUR 1,234.56").
    symbol: str | None = Field(default="$", min_length=1, max_length=5)
    decimals: int = Field(default=2, ge=0, le=4)  # of an exact amount; cards round further

    @model_validator(mode="before")
    @classmethod
    def _from_code(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"code": value, "symbol": None}
        if isinstance(value, dict) and "code" in value and "symbol" not in value:
            return {**value, "symbol": None}  # "$" belongs to the default code only
        return value

    @property
    def prefix(self) -> str:
        return self.symbol if self.symbol is not None else f"{self.code} "

    def format(self, amount: float, decimals: int | None = None, suffix: str = "") -> str:
        """1234.5 -> '$1,234.50'; -3 -> '-$3.00'; ``suffix`` follows the number ('$2.1M')."""
        places = self.decimals if decimals is None else decimals
        sign = "-" if amount < 0 else ""
        return f"{sign}{self.prefix}{abs(amount):,.{places}f}{suffix}"

    def powerbi_format(self, decimals: int | None = None) -> str:
        """A Power BI / Excel format string: '"$"#,0.00' (the prefix quoted as literal text)."""
        places = self.decimals if decimals is None else decimals
        number = "#,0" + ("." + "0" * places if places else "")
        return '"' + self.prefix.replace('"', "") + '"' + number


class ProjectConfig(BaseModel):
    """A whole project: the transactions source and the optional ones."""

    model_config = ConfigDict(extra="forbid")

    name: str = "custseg"
    data_root: str = "."
    transactions: SourceConfig
    customers: SourceConfig | None = None
    events: SourceConfig | None = None
    segmentation: SegmentationConfig = Field(default_factory=SegmentationConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    campaign: CampaignConfig = Field(default_factory=CampaignConfig)
    currency: CurrencyConfig = Field(default_factory=CurrencyConfig)
    ground_truth: GroundTruthConfig | None = None
    # Set by load_config: the folder relative paths resolve against.
    base_dir: str = "."

    @model_validator(mode="after")
    def _check_mappings(self) -> ProjectConfig:
        for source in ("transactions", "customers", "events"):
            cfg = getattr(self, source)
            if cfg is None:
                continue
            if cfg.inbox is not None and source != "transactions":
                raise ValueError(f"{source}.inbox: only the transactions source has an inbox")
            if cfg.incremental is not None and source != "transactions":
                raise ValueError(f"{source}.incremental: only transactions load incrementally")
            unknown = sorted(set(cfg.columns) - set(CANONICAL[source]))
            if unknown:
                raise ValueError(
                    f"{source}.columns maps unknown canonical column(s) {unknown}; "
                    f"known: {sorted(CANONICAL[source])}"
                )
            if cfg.unique_key is not None:
                bad_key = [c for c in cfg.unique_key if c not in CANONICAL[source]]
                if bad_key or not cfg.unique_key:
                    raise ValueError(
                        f"{source}.unique_key must list canonical columns; unknown: {bad_key}; "
                        f"known: {sorted(CANONICAL[source])}"
                    )
        tx = self.transactions.columns
        if "amount" not in tx and not ("quantity" in tx and "unit_price" in tx):
            raise ValueError(
                "transactions.columns must map `amount`, or both `quantity` and `unit_price`"
            )
        return self

    def resolve_root(self, data_root_override: str | None = None) -> Path:
        if data_root_override:
            return Path(data_root_override).expanduser().resolve()
        return (Path(self.base_dir) / self.data_root).resolve()

    def inbox_dir(self, data_root_override: str | None = None) -> Path | None:
        """The transactions inbox folder (it need not exist yet), or None without one."""
        inbox = self.transactions.inbox
        if inbox is None:
            return None
        path = Path(inbox.path).expanduser()
        if not path.is_absolute():
            path = self.resolve_root(data_root_override) / path
        return path.resolve()

    def sources(self) -> dict[str, SourceConfig | None]:
        return {
            "transactions": self.transactions,
            "customers": self.customers,
            "events": self.events,
        }


def load_config(path: str | Path) -> ProjectConfig:
    """Read and validate a project config file; errors name the file and the key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    raw["base_dir"] = str(path.resolve().parent)
    try:
        return ProjectConfig.model_validate(raw)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: "
            f"{err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        # Not chained: pydantic's own text repeats the input, which may hold a database URL.
        raise ConfigError(f"{path}: {details}") from None


def project_currency(config_path: str | Path | None) -> CurrencyConfig:
    """The currency of a project config file; the defaults for the demo (no file)."""
    return load_config(config_path).currency if config_path else CurrencyConfig()


def demo_config(data_dir: str | Path) -> ProjectConfig:
    """The built-in config for the generated demo data in ``data_dir``."""
    return ProjectConfig(
        name="demo",
        data_root=str(Path(data_dir).resolve()),
        base_dir=str(Path(data_dir).resolve()),
        transactions=SourceConfig(
            path="transactions.csv",
            format="csv",
            columns={
                "order_id": "order_id",
                "customer_id": "customer_id",
                "ordered_at": "order_date",
                "product_id": "product_id",
                "category": "category",
                "quantity": "quantity",
                "unit_price": "unit_price",
                "channel": "channel",
                "country": "country",
            },
            # `make dev`: drop more transaction files here; `inbox_sensor` loads them.
            inbox=InboxConfig(path="inbox", pattern="*.csv"),
        ),
        customers=SourceConfig(
            path="customers.csv",
            format="csv",
            columns={
                "customer_id": "customer_id",
                "signup_at": "signup_date",
                "age": "age",
                "gender": "gender",
                "region": "region",
            },
        ),
        events=SourceConfig(
            path="events.csv",
            format="csv",
            columns={
                "customer_id": "customer_id",
                "event_at": "event_at",
                "event_type": "event_type",
            },
        ),
        ground_truth=GroundTruthConfig(path="ground_truth/personas.csv"),
    )
