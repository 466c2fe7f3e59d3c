# lit_cert in a container: the tested versions (constraints.txt) on a CUDA base image.
#   docker build -t lit_cert .
#   docker run --rm --gpus all -v $PWD/runs:/opt/lit_cert/runs lit_cert fit --config configs/quickstart.yaml
# No W&B account is needed: runs are kept offline under runs/wandb and can be synced later.
FROM nvidia/cuda:13.0.0-runtime-ubuntu24.04
ENV DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv dataset-fashion-mnist \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /opt/lit_cert
COPY pyproject.toml README.md LICENSE CITATION.cff constraints.txt ./
COPY lit_cert ./lit_cert
RUN pip install -c constraints.txt ".[download]"
COPY configs ./configs
COPY sweeps ./sweeps
COPY scripts ./scripts
ENV WANDB_MODE=offline
ENTRYPOINT ["lit_cert"]
CMD ["fit", "--config", "configs/quickstart.yaml"]
