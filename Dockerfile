# syntax=docker/dockerfile:1
# The one augrec image: serving (`augrec serve`), the Feast feature server, kfp components and
# the Ray head/workers of the RayJob all run it (charts/augrec, docs/deploy.md).
#
#   docker build -t augrec:0.1.0 .                                  # CPU torch
#   docker build -t augrec:0.1.0-cuda --build-arg VARIANT=cuda .    # CUDA torch (GPU workers)
#   docker build --build-arg PYTHON_VERSION=3.13 -t augrec:py313 .  # 3.11, 3.12, 3.13 supported
ARG PYTHON_VERSION=3.12

# ---- builder: the wheel, a virtual environment with it installed, the gRPC stubs ----------
FROM python:${PYTHON_VERSION}-slim-bookworm AS builder
# cpu | cuda: which PyTorch wheel index torch comes from.
ARG VARIANT=cpu
# Must equal the torch pin in pyproject.toml (a test checks it).
ARG TORCH_VERSION=2.13.0
# The CUDA build of the PyTorch index for VARIANT=cuda.
ARG TORCH_CUDA=cu128
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN python -m venv /opt/venv
# torch first, from the variant's index, so the project install below finds it satisfied
# (PyPI's default torch wheel is the multi-GB CUDA one).
RUN case "${VARIANT}" in \
      cpu) index=https://download.pytorch.org/whl/cpu ;; \
      cuda) index="https://download.pytorch.org/whl/${TORCH_CUDA}" ;; \
      *) echo "VARIANT must be cpu or cuda, not '${VARIANT}'" >&2; exit 1 ;; \
    esac \
    && pip install --index-url "${index}" "torch==${TORCH_VERSION}"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
COPY components ./components
COPY pipelines ./pipelines
COPY services ./services
# The project as scripts/setup.sh installs it (`.`), less the `dev` extra (tests and linters),
# and from a wheel rather than editable.
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && pip install /wheels/augrec-*.whl
# gRPC stubs generated now, into the installed package (augrec/services/_generated/), so a
# read-only root file system never needs to write them at the first request.
RUN python -m augrec.services.build_protos \
    && python -c "from augrec.services import stubs; stubs.load()" \
    && augrec --help >/dev/null

# ---- final: slim, non-root, only the virtual environment and the feature repo -------------
FROM python:${PYTHON_VERSION}-slim-bookworm
ARG VARIANT=cpu
LABEL org.opencontainers.image.title="augrec" \
      org.opencontainers.image.description="augrec: recommendation training and serving" \
      org.opencontainers.image.licenses="Apache-2.0" \
      io.augrec.variant="${VARIANT}"
RUN groupadd --gid 10001 augrec \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/augrec \
       --shell /usr/sbin/nologin augrec \
    && mkdir -p /var/lib/augrec/bentoml \
    && chown 10001:10001 /var/lib/augrec/bentoml
COPY --from=builder /opt/venv /opt/venv
COPY feature_repo /opt/augrec/feature_repo
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BENTOML_HOME=/var/lib/augrec/bentoml \
    BENTOML_DO_NOT_TRACK=true \
    AUGREC_FEATURE_REPO=/opt/augrec/feature_repo
USER 10001:10001
WORKDIR /home/augrec
# HTTP (API, /livez, /readyz, /metrics) and gRPC.
EXPOSE 3000 50051
ENTRYPOINT ["augrec"]
CMD ["serve"]
