# syntax=docker/dockerfile:1
# The DMS API image. The Pulumi program builds and pushes it; ECS Fargate runs it as a non-root
# user on a read-only root file system. docs/image.md: building, running, and the choices below.
# test/image.test.ts performs these stages in a scratch folder, since no Docker engine runs in CI.
#
# Migration entry point: the infra's one-off migration task runs this image with the command
#   ["node", "dist/api/cli.js", "migrate"]
# (the entrypoint, tini, stays) as the RDS master user `dms_admin`, with PGPASSWORD and
# DB_APP_PASSWORD from Secrets Manager, before a new service revision takes traffic.

# The exact Node release the tests run on (package.json's `node` devDependency), on Debian slim:
# glibc, as Node's official binaries and @node-rs/argon2's gnu prebuild expect.
FROM node:24.21.0-trixie-slim AS base

FROM base AS build
WORKDIR /app
# Package files first, so this layer is reused until the dependencies change. No install
# scripts: the compiler needs none, and the dev tree's would download binaries.
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts --no-audit --no-fund
# .dockerignore admits only api/ and the tsconfig files, so this compiles exactly what ships.
COPY tsconfig.json tsconfig.build.json ./
COPY api ./api
RUN npm run build

FROM base AS runtime
# An init as PID 1: it forwards SIGTERM to node and reaps zombies, and a process without a
# SIGTERM handler (a one-off `cli.js` command) still stops, which node as PID 1 would not.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Production dependencies only, exactly as the lockfile pins them. No install scripts: no
# production dependency has one (@node-rs/argon2 ships its binary as an optional package).
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts --no-audit --no-fund
COPY --from=build /app/dist ./dist
# RDS's CA bundle, for `sslmode=verify-full`. World-readable: ADD gives a fetched file mode 0600,
# which the non-root user could not read.
ADD --chmod=0444 https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem /app/certs/rds-global-bundle.pem
# production: start-up refuses to run without the contract's variables and never embeds a
# database, an S3 server or a development key.
ENV NODE_ENV=production \
    NODE_EXTRA_CA_CERTS=/app/certs/rds-global-bundle.pem
# The image's `node` user, by number, so the ECS task's `user` and a runAsNonRoot check can match
# it. The files above stay root-owned: the process cannot change its own code.
USER 1000:1000
EXPOSE 3000
# For `docker run`; ECS ignores HEALTHCHECK, so the task definition's healthCheck runs this same command.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--"]
# node itself, never npm: no npm process, no writes to ~/.npm on a read-only file system.
CMD ["node", "dist/api/main.js"]
