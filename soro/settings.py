"""The one settings object of every Soro process, read from ``SORO_*`` environment variables.

Every field is documented in ``.env.example`` with its default; a test keeps the two in step.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SYSTEM_PROMPT = (
    "Ту Соро ҳастӣ, ёрдамчии меҳрубон ва донишманд, ки ба забони тоҷикӣ ҷавоб медиҳӣ. "
    "Мисли муаллими хуб содда, дақиқ ва кӯтоҳ фаҳмон. Агар чизеро надонӣ, рост бигӯ."
)


def default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "soro"


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "soro"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SORO_", env_file=".env", extra="ignore")

    # Storage and queue
    database_url: str = Field(
        default_factory=lambda: f"sqlite+aiosqlite:///{default_data_dir() / 'soro.db'}",
        description="SQLAlchemy async URL; PostgreSQL in production (postgresql+asyncpg://…).",
    )
    redis_url: str = "redis://127.0.0.1:6379/0"
    stream_prefix: str = "soro"

    # Model server
    llm_base_url: str = "http://127.0.0.1:8000/v1"
    llm_model: str = "soro"
    llm_api_key: SecretStr = SecretStr("EMPTY")
    llm_temperature: float = 0.7
    llm_max_tokens: int = 512
    # Tokens per streamed event (vLLM's ``stream_interval``; the first token always comes at once). Previews
    # are paced at ``partial_interval_seconds`` anyway, and every event costs the worker and the model server
    # CPU. 1: an event per token, and the field is left out (for servers that do not know it).
    llm_stream_interval: int = Field(default=8, ge=1)
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    # A second served model that answers a stable share of conversations (off while the model name is empty).
    llm_candidate_model: str = ""
    llm_candidate_base_url: str = Field(default="", description="Where the candidate is served; empty: llm_base_url.")
    llm_candidate_share: float = Field(default=0.0, ge=0.0, le=1.0)

    # Conversation context
    context_token_budget: int = 1536
    chars_per_token: float = 2.3
    max_input_chars: int = 4000

    # Delivery contract
    request_deadline_seconds: float = 120.0
    max_attempts: int = 3
    visibility_timeout_seconds: float = Field(
        default=10.0, description="A request whose worker sent no heartbeat for this long is taken over."
    )
    backlog_limit: int = 500
    inbound_key_retention_days: float = Field(
        default=7.0, gt=0, description="Update ids kept this long to spot a retried update, then pruned."
    )
    group_commit_linger_seconds: float = 0.001
    group_commit_max: int = Field(default=128, ge=1)
    group_commit_concurrency: int = Field(default=1, ge=1)

    # Worker
    worker_concurrency: int = 64
    partial_interval_seconds: float = 0.6
    partial_min_chars: int = 24
    llm_retry_max_seconds: float = 10.0

    # Rate limits and quotas
    user_messages_per_minute: int = 12
    user_messages_per_day: int = 300

    # Telegram
    telegram_token: SecretStr = SecretStr("")
    telegram_api_base: str = "https://api.telegram.org"
    webhook_url: str = ""
    webhook_secret: SecretStr = SecretStr("")
    telegram_global_rate: float = 30.0
    telegram_chat_rate: float = 1.0
    operator_ids: list[int] = Field(default_factory=list)

    # Who may talk to the bot: pilot mode serves only the listed ids (Telegram chat ids, E.164 numbers).
    allow_list: list[str] = Field(default_factory=list)

    # SMS through Kannel (off while sms_kannel_url is empty)
    sms_kannel_url: str = Field(default="", description="Kannel smsbox sendsms URL, e.g. http://kannel:13013.")
    sms_kannel_username: str = "soro"
    sms_kannel_password: SecretStr = SecretStr("")
    sms_sender: str = Field(default="", description="The service number or short code answers come from.")
    sms_segment_budget: int = Field(default=3, ge=1, le=10)
    sms_mo_secret: SecretStr = Field(
        default=SecretStr(""),
        description="Shared secret: the password of Kannel's post-url and dlr-url; required with SMS on.",
    )
    sms_allowed_gateways: list[str] = Field(
        default_factory=lambda: ["127.0.0.1/32", "::1/128"],
        description="Addresses or networks (CIDR) the MO and DLR requests may come from.",
    )
    sms_dlr_base_url: str = Field(
        default="http://127.0.0.1:8080", description="This bot's HTTP server as Kannel reaches it (for dlr-url)."
    )
    sms_daily_segments: int = Field(default=30, description="Segments one number may receive a day.")
    sms_cost_per_segment: float = Field(default=0.45, description="Price of one segment, for the spend logs.")
    sms_default_country_code: str = Field(default="992", description="For numbers the gateway gives without it.")
    sms_gateway_retry_max_seconds: float = Field(default=60.0, description="Longest wait between gateway retries.")

    # HTTP servers
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    worker_metrics_port: int = Field(default=9101, description="First port a worker serves /metrics on.")
    worker_metrics_ports: int = Field(
        default=32, ge=1, description="Ports tried from worker_metrics_port on, so several workers share a host."
    )

    # Demo and local runtime
    vllm_venv: Path = Field(default_factory=lambda: default_cache_dir() / "vllm-0.32.0")
    # llm-compressor's own venv for `soro train quantize` (scripts/setup-quantize.sh makes it).
    quantize_venv: Path = Field(default_factory=lambda: default_cache_dir() / "quantize-0.14.0.1")
    cache_dir: Path = Field(default_factory=default_cache_dir)
    shared_data: Path = Path("../shared/data/tajik")

    log_level: str = "INFO"
    debug_log_text: bool = False

    @field_validator("allow_list", mode="before")
    @classmethod
    def _ids_as_text(cls, value: object) -> object:
        # [1001, "+992901234567"]: Telegram ids may be written as JSON numbers.
        return [str(item) for item in value] if isinstance(value, list | tuple) else value
