# syntax=docker/dockerfile:1.7
# One image per service, built from the same stages:
#   docker build --target api .   |   --target inference-worker   |   --target trainer
# Node 22 LTS: some of the API's dependencies (cookie, content-disposition) need 22 or later.
ARG NODE_VERSION=22

# ---- build: install everything (including tfjs-node's native TensorFlow), compile, drop dev deps
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
# Toolchain only for native modules that have no prebuilt binary for this platform.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
COPY packages/shared/package.json packages/shared/
COPY packages/model/package.json packages/model/
COPY services/api/package.json services/api/
COPY services/inference-worker/package.json services/inference-worker/
COPY services/trainer/package.json services/trainer/
RUN npm ci --no-audit --no-fund --include=optional
# tfjs-node is optional in the lockfile (laptops without it fall back to wasm); images must have it.
RUN node -e "require('@tensorflow/tfjs-node')" 2>/dev/null \
 || npm install --no-audit --no-fund --no-save -w @btd/model @tensorflow/tfjs-node@4.22.0 \
 && node -e "require('@tensorflow/tfjs-node'); console.log('tfjs-node ready')"
COPY . .
RUN mkdir -p models \
 && npx tsc -b \
 && npm prune --omit=dev --no-audit --no-fund

# ---- runtime: compiled code, production dependencies, bundled models; runs as the non-root `node` user.
# Each service's stage sets only settings that service reads.
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/packages ./packages
COPY --from=build /app/services ./services
COPY --from=build /app/models ./models
RUN mkdir -p /app/data && chown node:node /app/data
USER node

FROM runtime AS api
ENV PORT=3000 \
    DATA_DIR=/app/data
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "services/api/dist/main.js"]

FROM runtime AS inference-worker
ENV TF_BACKEND=tensorflow \
    MODELS_DIR=/app/models \
    WORKER_METRICS_PORT=9101
EXPOSE 9101
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+process.env.WORKER_METRICS_PORT+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "services/inference-worker/dist/main.js"]

FROM runtime AS trainer
ENV TF_BACKEND=tensorflow \
    MODELS_DIR=/app/models \
    TRAINER_WORK_DIR=/app/data/trainer \
    TRAINER_DATASET_ROOTS=/datasets
CMD ["node", "services/trainer/dist/main.js"]
