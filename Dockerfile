# The txe engine for infra/docker-compose.yml. It cannot be built on the project's own machines
# (no Docker engine there); keep it in step with package.json and the README.
FROM node:20-slim
WORKDIR /txe
COPY package.json package-lock.json tsconfig.json ./
RUN npm ci --no-audit --no-fund
COPY engine engine
COPY workers workers
COPY cli cli
COPY bench bench
COPY proto proto
COPY index.ts index.ts
RUN npm run build && npm prune --omit=dev
EXPOSE 50051
CMD ["node", "dist/cli/main.js", "serve"]
