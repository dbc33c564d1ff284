# hyft on CUDA 13 (Ubuntu 24.04): builds the tree, then runs `hyft serve`.
#   docker build -t hyft .
#   docker run --gpus all -p 8000:8000 -v /models:/models hyft --model /models/deepseek-coder-1.3b-base
# Kept in step with scripts/setup.sh (the same Debian/Ubuntu packages, torch==2.11.0
# from scripts/requirements.txt). Not built on the development machine, which
# reaches no image registry.
FROM nvidia/cuda:13.0.0-devel-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build ccache pkg-config python3-venv python3-pip \
      libsentencepiece-dev sentencepiece nlohmann-json3-dev libcxxopts-dev catch2 libyaml-cpp-dev \
      libpcre2-dev libicu-dev libgloo-dev libcpp-httplib-dev curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/hyft
COPY . .
# setup.sh makes the Python environment (LibTorch is the torch wheel) and builds;
# the packages above are already there.
RUN HYFT_SKIP_APT=1 HYFT_ENV_CACHE=/opt/hyft-env scripts/setup.sh && \
    ln -s /opt/hyft/build/bin/hyft /usr/local/bin/hyft

EXPOSE 8000
ENTRYPOINT ["hyft", "serve", "--host", "0.0.0.0", "--port", "8000"]
