// A small Node service: answers with its dependencies' work, or checks
// itself once with --check (what the corpus runs).
const http = require('http');
const ms = require('ms');
const semver = require('semver');

function answer() {
  return JSON.stringify({ twoHours: ms('2h'), newer: semver.gt('1.10.0', '1.9.9') });
}

if (process.argv.includes('--check')) {
  console.log(answer());
  process.exit(0);
}
const port = Number(process.env.PORT || 3000);
http.createServer((req, res) => {
  res.setHeader('Content-Type', 'application/json');
  res.end(answer() + '\n');
}).listen(port, () => console.log(`listening on ${port}`));
