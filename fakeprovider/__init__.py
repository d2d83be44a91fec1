"""fakeprovider: a small, steerable, OpenAI-compatible fake LLM provider.

It stands in for real providers behind the LiteLLM proxy (models
``openai/fake-gpt`` and ``openai/fake-gpt-backup`` with ``api_base`` pointing
here) in tests, the dev stack and benchmarks.  Replies are deterministic and
cheap; nothing is logged per request unless ``--access-log`` is given.

Running
=======

``python -m fakeprovider --host 127.0.0.1 --port 8010`` (``--port 0`` picks a
free port) prints ``fakeprovider listening on http://HOST:PORT`` when ready
and exits with status 0 on SIGINT/SIGTERM.  In-process::

    from fakeprovider.server import base_url, serve
    runner = await serve("127.0.0.1", 0)
    url = base_url(runner)          # http://127.0.0.1:<port>
    ...
    await runner.cleanup()

HTTP surface
============

* ``GET /health`` -> ``{"status": "ok"}``.
* ``GET /v1/models`` -> OpenAI model list (``fake-gpt``, ``fake-gpt-backup``);
  ``GET /v1/models/{name}`` answers for any name.
* ``GET /v1/model/info`` -> the two models' prices in the LiteLLM proxy's
  format (``{"data": [{"model_name", "model_info": {"input_cost_per_token",
  "output_cost_per_token"}}]}``, $1 and $2 per million tokens, as
  gateway/litellm.yaml prices them), for a server that calls the fake
  directly instead of through LiteLLM (the API tests, the benchmark's
  ``direct`` stack).
* ``POST /v1/chat/completions`` -> OpenAI Chat Completions, non-streaming and
  streaming (``"stream": true``).  Any model name and any Authorization
  header are accepted.  Invalid JSON, a body that is not an object, missing
  or empty ``messages`` or a missing ``model`` -> 400 with an OpenAI error
  body.  The routes also exist without the ``/v1`` prefix.
* ``GET /_fake/requests`` -> ``{"requests": [...]}``: the last 200 chat
  completion requests (newest last), each ``{"model", "body", "headers"}``
  with the parsed JSON body and lower-cased header names (no
  ``authorization``).  ``DELETE /_fake/requests`` clears the log.

Directive language
==================

A directive in the LAST message with role ``user`` steers the reply.  The
message content may be a string or a list of parts; text parts are joined
with newlines (other parts are ignored).  The first ``[fake ...]`` in that
text is the directive; later ones are ordinary text::

    [fake key=value key=value ...]

Items are separated by whitespace and values cannot contain whitespace or
``]``.  ``[fake]`` with no items is allowed.  An unknown key, an item
without ``=value``, a repeated key, a bad value or a missing ``]`` is
rejected with HTTP 400 (``code: "invalid_directive"``, ``param``: the key,
and the key named in the message), so typos never go unnoticed.

=================  ==========================================================
key=value          effect
=================  ==========================================================
tokens=N           content is exactly N generated words (0..100000).
reasoning=N        the model reasons first, in N generated words (1..100000):
                   non-streaming, ``message.reasoning_content``; streaming,
                   N ``{"reasoning_content": word}`` chunks right after the
                   role chunk, before the first delay and the content (so
                   a stall or drop still lets them through).  Counted in
                   ``completion_tokens`` and in ``usage.completion_tokens_
                   details.reasoning_tokens``, as DeepSeek reports them.
chunks=N           streaming: content is sent in min(N, words) content chunks
                   (N >= 1).  Default: min(words, 8).
delay_ms=N         wait N ms before the first content chunk and between
                   consecutive content chunks; non-streaming: before the
                   response.
first_delay_ms=N   overrides delay_ms for the wait before the first content
                   chunk (non-streaming: before the response).
status=N           fail with HTTP N (400..599) and an OpenAI error body:
                   429 ``rate_limit_error`` (with ``retry-after``), 5xx
                   ``server_error``, 401 ``authentication_error``,
                   403 ``permission_error``, other 4xx
                   ``invalid_request_error``.
retry_after=N      ``retry-after`` header value in seconds.  Always sent on
                   429 (default 1); sent on other error statuses only when
                   given.
fail=primary       only requests whose model is exactly ``fake-gpt`` fail
                   (with ``status`` if given, else 500); other models, e.g.
                   ``fake-gpt-backup``, succeed normally.
drop_after=N       streaming: after N content chunks, abort the TCP
                   connection (no finish chunk, no [DONE], no chunked
                   terminator).  N >= number of chunks drops right before
                   the finish chunk.  Non-streaming: abort without any
                   response (N ignored).
stall_after=N      streaming: after N content chunks, send nothing more and
                   hold the connection until the client leaves (N >= number
                   of chunks stalls before the finish chunk).  Non-streaming:
                   never respond.
usage=none         streaming: no usage chunk even with
                   ``stream_options.include_usage``; non-streaming: no
                   ``usage`` object.
usage=zero|negative|huge
                   a wrong usage object, as a broken provider might send:
                   all zeros, negated counts, or 3,000,000,000 prompt tokens.
garbage_after=N    streaming: after N content chunks, one event that is
                   valid JSON but no chunk (``data: [5]``); the stream then
                   goes on as usual.  Non-streaming: a reply that is valid
                   JSON but no completion (``{"choices": "broken"}``; N
                   ignored).
finish=R           report finish_reason R (stop, length, content_filter,
                   tool_calls) whatever happened.
json=invalid       with a json_object/json_schema ``response_format``: the
                   content is NOT valid JSON (the first half of the valid
                   document, e.g. ``{"name": "Ada Lov``).
json=mismatch      with a json_schema ``response_format``: valid JSON that
                   violates the schema (first required property removed,
                   other typed properties given wrong types); with
                   json_object: a JSON array instead of an object.
                   Without a JSON ``response_format``, ``json`` is ignored.
tool=NAME          reply with a call to the function tool NAME, which must
                   be in the request's ``tools`` (else 400).  Wins over
                   ``tool_choice`` (even ``"none"``).
echo=1             content is the last user message text with the directive
                   removed (1/0, true/false, yes/no).
=================  ==========================================================

Order of events: the request is validated and the directive parsed (400s
come back immediately); then the first delay (``first_delay_ms``, else
``delay_ms``) elapses before a non-streaming response, a simulated error
(also for streaming requests), a non-streaming drop or stall, or - when
streaming - before the first content chunk.  Streaming sends the response
headers and the role chunk immediately.  If both drop_after and stall_after
apply at the same chunk, the drop wins.

Directive removal: the directive and the whitespace around it become one
space, and the text is stripped: ``"Hello [fake echo=1] world"`` ->
``"Hello world"``.  This stripped text is what ``echo`` returns, what the
default reply quotes and what seeds ``tokens`` and tool-call ids.

Reply rules
===========

Tokens.  A token is a whitespace-separated word (``str.split()``).
``prompt_tokens`` = words in the text content of all messages (string
content or text parts; directive included) + 1 per message, at least 1.
``completion_tokens`` = words in the reply content, or for a tool call the
words of its JSON arguments string (at least 1).

Content precedence: tool call > JSON ``response_format`` > ``echo=1`` >
``tokens=N`` > the default reply.

* Default reply: ``Hello from fake! You said: <first 6 words of the user
  text>`` (just ``Hello from fake! You said:`` if there are none).
* ``tokens=N``: N words from a fixed 32-word vocabulary (alpha, bravo, ...),
  single-spaced, chosen by a linear congruential generator seeded with
  ``zlib.crc32`` of the user text, so identical requests get identical words
  and changing only ``chunks``/``delay_ms``/... does not change the words.
* ``response_format: {"type": "json_object"}`` -> ``{"result": "<default
  reply>"}``.  ``{"type": "json_schema", "json_schema": {"schema": S}}`` ->
  one line of JSON (``json.dumps`` with its default ``", "``/``": "``
  separators, so it spans several tokens) that validates against S.
  Supported: ``type`` (object, string, integer, number, boolean, array,
  null, or a list of types), ``properties`` (all included, required or
  not), ``required``, ``additionalProperties`` (one ``"key"`` entry when
  there are no properties), ``enum`` (first value), ``const``,
  ``anyOf``/``oneOf`` (first non-null branch), ``allOf`` (merged), ``$ref``
  to ``#/$defs/...`` (any local pointer), ``items``, ``prefixItems``,
  ``minItems``/``maxItems`` (max(minItems, 1) items), ``uniqueItems`` (items
  are varied), ``format`` (email, date-time, date, time, duration, uri,
  uuid, hostname, ipv4, ipv6, ... ), ``minLength``/``maxLength``,
  ``minimum``/``maximum`` and their exclusive forms, ``multipleOf``, and a
  non-null ``default`` (used as is).  ``pattern`` and ``not`` are ignored.
  Values are plausible where the property name suggests it (``email`` ->
  ``user@example.com``, ``name`` -> ``Ada Lovelace``, integer ``age`` -> 36,
  ``city`` -> ``London``, ``*_at`` -> a timestamp, ...); otherwise strings
  are ``example <property>``, integers 42, numbers 3.14, booleans true.
  Recursion ends where a ``$ref`` would re-enter a definition being
  generated (``manager: Person | None`` -> null, ``children: list[Node]``
  -> ``[]``) and, as a backstop, below 8 levels of nesting (optional
  branches null, arrays ``minItems`` long, objects only required
  properties).  ``tokens`` is ignored for JSON replies.
* Tools: with function ``tools`` and ``tool_choice: "required"`` (first
  tool), ``tool_choice: {"type": "function", "function": {"name": X}}`` or
  ``tool=X``, the reply is ``content: null`` and one tool call
  ``{"id": "call_<24 hex>", "type": "function", "function": {"name": X,
  "arguments": <JSON generated from the function's parameters schema>}}``
  with finish_reason ``tool_calls``.  Otherwise (``auto``/``none``/absent)
  a normal reply.
* ``stop`` (string or list): content is cut before the earliest stop
  sequence (finish_reason ``stop``).  Then ``max_completion_tokens`` (or
  else ``max_tokens``) cuts the content after that many words with
  finish_reason ``length``.  Neither applies to tool calls.  ``n`` and
  sampling parameters are accepted and ignored (see /_fake/requests).
* ``logprobs: true`` (``top_logprobs``: an integer 0..20, which needs
  ``logprobs: true``; else 400 naming the parameter) gives the choice
  OpenAI's ``logprobs: {"content": [...], "refusal": null}``: one entry per
  token of the content (a word with the whitespace before it; trailing
  whitespace rides on the last, so the tokens concatenate to the content),
  each ``{"token", "logprob": -0.1, "bytes": <UTF-8 of token>,
  "top_logprobs": [...]}`` with ``top_logprobs`` entries (none by default):
  the token itself at -0.1, then words of the ``tokens`` vocabulary (not the
  token's word, with its leading whitespace) at -1.0, -2.0, ...  Streaming:
  each content chunk carries the logprobs of its own tokens; the role,
  finish and usage chunks ``null``.  Tool-call replies and requests without
  ``logprobs`` get ``"logprobs": null``.

Non-streaming responses are ``chat.completion`` objects (id
``chatcmpl-fake<counter>``, ``created``, the request's ``model``, one
choice, ``usage``).  Streaming responses are ``text/event-stream`` events
``data: <json>\\n\\n``, one write each: a role chunk (``{"role":
"assistant", "content": ""}``; ``content: null`` for tool calls), the
content chunks (``{"content": piece}``; concatenated they equal the
non-streaming content exactly), a chunk with an empty delta and the
finish_reason, a usage chunk (``choices: []``) only when
``stream_options.include_usage`` is true and not ``usage=none``, and
``data: [DONE]``.  For tool calls the content chunks are argument fragments
``{"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}``; the
first one is preceded (back to back, after the first delay) by
``{"tool_calls": [{"index": 0, "id": ..., "type": "function", "function":
{"name": ..., "arguments": ""}}]}``.  ``chunks``, delays, ``drop_after``
and ``stall_after`` count argument fragments.  A client that disconnects
mid-stream simply ends the stream.
"""

__all__ = ["__version__"]

__version__ = "1.0.0"
