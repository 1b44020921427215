// The official TypeScript MCP client against kb-mcp: an oversized kb_add, then the next call.
// Usage: node oversized.mjs <mcp url> <content bytes>. Prints one JSON line per call:
// {"call": ..., "ok": bool, "error": message or null, "isError": bool or null}.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, size] = process.argv.slice(2);
const client = new Client({ name: "kb-mcp-ts-test", version: "1.0.0" });
await client.connect(new StreamableHTTPClientTransport(new URL(url)));

async function attempt(call, name, args) {
  try {
    const result = await client.callTool({ name, arguments: args });
    console.log(JSON.stringify({ call, ok: true, error: null, isError: result.isError ?? false }));
  } catch (error) {
    console.log(JSON.stringify({ call, ok: false, error: String(error?.message ?? error), isError: null }));
  }
}

await attempt("oversized", "kb_add", { title: "big", content: "x".repeat(Number(size)) });
await attempt("next", "kb_list", {});
await client.close();
