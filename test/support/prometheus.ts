/** The Prometheus text format, as the tests read what GET /metrics answers. */

/** Parses the Prometheus text format into `name{labels}` → value, failing on any line that is not a sample or a comment. */
export function parseScrape(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/.exec(line);
    if (!match) throw new Error(`not a Prometheus sample line: ${JSON.stringify(line)}`);
    const labels = match[2] ? sortLabels(match[2]) : '';
    samples.set(`${match[1]}${labels}`, Number(match[3]));
  }
  return samples;
}

function sortLabels(block: string): string {
  const pairs = block.slice(1, -1).match(/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"/g) ?? [];
  return `{${pairs.sort().join(',')}}`;
}
