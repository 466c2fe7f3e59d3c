# lit_cert in a container: `docker build -t lit_cert .` then
#   docker run --rm -v $PWD/runs:/opt/lit_cert/runs lit_cert fit --config configs/quickstart.yaml
# (GPU: add --gpus all; the torch wheel from PyPI is a CUDA build.)
FROM python:3.11-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends dataset-fashion-mnist \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/lit_cert
COPY pyproject.toml README.md ./
COPY lit_cert ./lit_cert
COPY configs ./configs
RUN pip install --no-cache-dir .
# no W&B account needed: runs are kept offline under runs/wandb and can be synced later
ENV WANDB_MODE=offline
ENTRYPOINT ["python", "-m", "lit_cert"]
CMD ["fit", "--config", "configs/quickstart.yaml"]
