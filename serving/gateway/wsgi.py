"""gunicorn entry point: `gunicorn -c serving/gateway/gunicorn.conf.py serving.gateway.wsgi:app`.

Configured only through TEXTCLF_* environment variables (see config.py), e.g.
TEXTCLF_TFSERVING_GRPC=tfserving:8500 TEXTCLF_MODELS=news,sentiment TEXTCLF_API_KEYS=k1,k2.
"""

from __future__ import annotations

import logging
import os

from serving.gateway.app import create_app
from serving.gateway.config import GatewayConfig
from serving.gateway.production_server import LOG_FORMAT

# TEXTCLF_LOG_LEVEL=WARNING drops the per-request line (it costs CPU under load); errors still log
logging.basicConfig(
    level=os.environ.get("TEXTCLF_LOG_LEVEL", "INFO").upper(),
    format=LOG_FORMAT,
)
app = create_app(GatewayConfig.from_env())
