# kiln serving image, following SageMaker's container contract: `docker run IMAGE serve` serves
# the model extracted into /opt/ml/model (kiln package writes that model.tar.gz) on port 8080,
# or SAGEMAKER_BIND_TO_PORT when set; GET /ping and POST /invocations; drains on SIGTERM.
#   docker build -t kiln .
#   docker run -p 8080:8080 -v "$PWD/sentiment.kiln:/opt/ml/model:ro" kiln serve
# GPU (NVIDIA, for artifacts compiled with --device cuda; run with --gpus all or nvidia.com/gpu):
#   docker build --build-arg DEVICE=cuda -t kiln:cuda .
# installs ONNX Runtime's CUDA provider and the CUDA 12 / cuDNN 9 libraries it loads (docs/devices.md).

# Build stage: the TypeScript compiler is a dev dependency, so dist/ is built here.
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
RUN npm ci
COPY src ./src
RUN npx tsc -p .

# Production dependencies only. --ignore-scripts skips the root "prepare" (tsc, absent without dev
# dependencies); rebuild then runs the install scripts of the dependencies that have them.
FROM node:20-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm rebuild onnxruntime-node protobufjs && npm cache clean --force
# package.json's allowScripts keeps npm from downloading the CUDA provider; with DEVICE=cuda the
# package's own install script fetches it (Microsoft.ML.OnnxRuntime.Gpu.Linux 1.30.0, from NuGet).
ARG DEVICE=cpu
RUN if [ "$DEVICE" = cuda ]; then ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js; \
    elif [ "$DEVICE" != cpu ]; then echo "DEVICE must be cpu or cuda, got $DEVICE" >&2; exit 1; fi

FROM node:20-slim
ARG DEVICE=cpu
# CUDA 12 runtime, cuBLAS, cuFFT, cuRAND and cuDNN 9 from NVIDIA's Debian 12 repository: what
# ONNX Runtime 1.30's CUDA provider loads. The NVIDIA driver comes from the host (container toolkit).
RUN if [ "$DEVICE" = cuda ]; then \
      apt-get update && apt-get install -y --no-install-recommends ca-certificates curl && \
      curl -fsSL -o /tmp/cuda-keyring.deb https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/cuda-keyring_1.1-1_all.deb && \
      dpkg -i /tmp/cuda-keyring.deb && rm /tmp/cuda-keyring.deb && apt-get update && \
      apt-get install -y --no-install-recommends cuda-cudart-12-6 libcublas-12-6 libcufft-12-6 libcurand-12-6 libcudnn9-cuda-12 && \
      rm -rf /var/lib/apt/lists/*; \
    fi
ENV LD_LIBRARY_PATH=/usr/local/cuda/lib64
# serve binds 127.0.0.1 by default (safe on a laptop); in a container it must take outside
# traffic. Package extraction and compiles go to a cache folder the non-root user owns.
ENV NODE_ENV=production KILN_HOST=0.0.0.0 KILN_CACHE_DIR=/tmp/kiln-cache
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json package-lock.json ./
COPY models ./models
COPY data ./data
# The node image's unprivileged user (uid 1000); SageMaker mounts /opt/ml/model read-only.
USER node
LABEL com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true
EXPOSE 8080
ENTRYPOINT ["node", "/app/dist/src/cli/main.js"]
