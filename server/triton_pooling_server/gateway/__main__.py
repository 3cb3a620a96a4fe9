"""`python -m triton_pooling_server.gateway --triton-url HOST:GRPC_PORT --host H --port P`."""

import sys

from .command import main

sys.exit(main())
