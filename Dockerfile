# voxtrace API image: Node 24 runs the TypeScript sources directly (type stripping), no build step.
FROM node:24-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY src ./src
COPY migrations ./migrations
# --max-semi-space-size: as ./voxtrace runs Node (see the comment there); override with your own NODE_OPTIONS
ENV NODE_ENV=production \
    NODE_OPTIONS=--max-semi-space-size=4 \
    VOXTRACE_HOST=0.0.0.0 \
    VOXTRACE_DATA_DIR=/data
# a named volume mounted here inherits this ownership, so the unprivileged user can write its spool
RUN mkdir -p /data && chown node:node /data
EXPOSE 8750
USER node
CMD ["node", "src/cli.ts", "serve"]
