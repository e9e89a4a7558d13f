"""``python -m examples.fastapi_integration``: the shop on http://127.0.0.1:8080 (with an
embedded Valkey unless REDIS_STREAMING_REDIS__URL is set)."""

import uvicorn

from examples.fastapi_integration.main import api

settings = api.state.streaming.settings
uvicorn.run(api, host=settings.app.host, port=settings.app.port)
