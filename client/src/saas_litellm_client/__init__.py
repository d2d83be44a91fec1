"""Typed Python client of the SaaS LiteLLM job API.

    from saas_litellm_client import SaasLiteLLMClient

    async with SaasLiteLLMClient(base_url="http://localhost:8003", team_id="acme-corp",
                                 virtual_key="sk-...") as client:
        job = await client.create_job("document_analysis")
        response = await client.llm_call(job_id=job.job_id, messages=[{"role": "user", "content": "Analyze..."}])
        result = await client.complete_job(job.job_id, "completed")
        print(f"Credits remaining: {result.credits_remaining}")

See client/README.md for streaming, structured outputs, the job context manager, errors
and retries.
"""

from saas_litellm_client._version import __version__
from saas_litellm_client.client import JobSession, SaasLiteLLMClient
from saas_litellm_client.errors import (
    AlreadyExistsError,
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    ConflictError,
    DatabaseUnavailableError,
    DeadlineExceededError,
    FailedPreconditionError,
    FieldViolation,
    IdempotencyKeyReusedError,
    InsufficientCreditsError,
    InternalServerError,
    JobAlreadyFinishedError,
    JobNotFoundError,
    JobNotOpenError,
    ModelNotAllowedError,
    NoDefaultModelError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RequestAlreadyProcessedError,
    SaasLiteLLMError,
    StreamCutError,
    StreamInterruptedError,
    StructuredOutputError,
    TeamMismatchError,
    TeamPausedError,
    TeamRateLimitedError,
    TeamSuspendedError,
    UnavailableError,
    UpstreamRejectedError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
    ValidationError,
)
from saas_litellm_client.models import (
    CallMetadata,
    CallStatus,
    CallSummary,
    ChatMessage,
    ChatResponse,
    CompleteJobResponse,
    ErrorStatus,
    FunctionCall,
    Job,
    JobCosts,
    JobStatus,
    LLMCallResponse,
    StreamChoice,
    StreamChunk,
    StreamDelta,
    ToolCall,
    Usage,
)
from saas_litellm_client.params import CallOptions
from saas_litellm_client.retry import RetryPolicy
from saas_litellm_client.schema import response_format, strict_json_schema
from saas_litellm_client.streaming import LLMStream
from saas_litellm_client.sync import SyncJobSession, SyncLLMStream, SyncSaasLiteLLMClient

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AlreadyExistsError",
    "AuthenticationError",
    "CallMetadata",
    "CallOptions",
    "CallStatus",
    "CallSummary",
    "ChatMessage",
    "ChatResponse",
    "CompleteJobResponse",
    "ConflictError",
    "DatabaseUnavailableError",
    "DeadlineExceededError",
    "ErrorStatus",
    "FailedPreconditionError",
    "FieldViolation",
    "FunctionCall",
    "IdempotencyKeyReusedError",
    "InsufficientCreditsError",
    "InternalServerError",
    "Job",
    "JobAlreadyFinishedError",
    "JobCosts",
    "JobNotFoundError",
    "JobNotOpenError",
    "JobSession",
    "JobStatus",
    "LLMCallResponse",
    "LLMStream",
    "ModelNotAllowedError",
    "NoDefaultModelError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "RequestAlreadyProcessedError",
    "RetryPolicy",
    "SaasLiteLLMClient",
    "SaasLiteLLMError",
    "StreamChoice",
    "StreamChunk",
    "StreamCutError",
    "StreamDelta",
    "StreamInterruptedError",
    "StructuredOutputError",
    "SyncJobSession",
    "SyncLLMStream",
    "SyncSaasLiteLLMClient",
    "TeamMismatchError",
    "TeamPausedError",
    "TeamRateLimitedError",
    "TeamSuspendedError",
    "ToolCall",
    "UnavailableError",
    "UpstreamRejectedError",
    "UpstreamTimeoutError",
    "UpstreamUnavailableError",
    "Usage",
    "ValidationError",
    "__version__",
    "response_format",
    "strict_json_schema",
]
