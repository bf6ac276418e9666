# kiln serving image, following SageMaker's container contract: `docker run IMAGE serve` serves
# the model extracted into /opt/ml/model (kiln package writes that model.tar.gz) on port 8080,
# or SAGEMAKER_BIND_TO_PORT when set; GET /ping and POST /invocations; drains on SIGTERM.
#   docker build -t kiln .
#   docker run -p 8080:8080 -v "$PWD/sentiment.kiln:/opt/ml/model:ro" kiln serve

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

FROM node:20-slim
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
