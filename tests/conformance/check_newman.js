#!/usr/bin/env node
// Compares newman JSON reports with tests/conformance/EXCEPTIONS.md.
//
//   node check_newman.js EXCEPTIONS.md <name>:<report.json> [<name>:<report.json> ...]
//
// Every failed assertion (and every request that could not be sent) must be
// listed in the exceptions table, and every listed exception must still fail:
// an exception that starts passing is reported too, so the list never hides a
// fixed (or silently broken) behaviour. Exit status 0 only when both hold.
// The table rows are "| collection | request path | assertion | reason |",
// where the request path is "Folder / Sub-folder / Request name" and the
// assertion is the pm.test name, or "(request error)" for a request newman
// could not send.
'use strict';
const fs = require('fs');

function readExceptions(file) {
  const rows = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = line.match(/^\|\s*(mps|rps)\s*\|(.*)\|(.*)\|(.*)\|\s*$/);
    if (!m) continue;
    rows.push({ collection: m[1], request: m[2].trim(), assertion: m[3].trim(), reason: m[4].trim(), seen: false });
  }
  return rows;
}

function itemPaths(collection) {
  const paths = new Map();
  (function walk(items, prefix) {
    for (const it of items || []) {
      const p = prefix ? `${prefix} / ${it.name}` : it.name;
      if (it.item) walk(it.item, p);
      else paths.set(it.id, p);
    }
  })(collection.item, '');
  return paths;
}

function main() {
  const [exFile, ...reports] = process.argv.slice(2);
  if (!exFile || reports.length === 0) {
    console.error('usage: check_newman.js EXCEPTIONS.md name:report.json ...');
    process.exit(2);
  }
  const exceptions = readExceptions(exFile);
  let unexpected = 0;
  for (const spec of reports) {
    const [name, file] = spec.split(/:(.*)/s);
    const report = JSON.parse(fs.readFileSync(file, 'utf8'));
    const paths = itemPaths(report.collection);
    const count = { requests: 0, sendErrors: 0, assertions: 0, passed: 0, failed: 0, excepted: 0 };
    // returns true when the failure is an accepted exception
    const note = (request, assertion, detail) => {
      const ex = exceptions.find(e => e.collection === name && e.request === request && e.assertion === assertion);
      if (ex) {
        ex.seen = true;
        console.log(`  excepted  [${name}] ${request} :: ${assertion} -- ${ex.reason}`);
        return true;
      }
      unexpected++;
      console.log(`  FAILED    [${name}] ${request} :: ${assertion} -- ${detail}`);
      return false;
    };
    // A pre-request script's pm.sendRequest() shows up as a second execution of the same item carrying
    // the item's assertions again: assertions are taken once per item (from its last execution).
    const lastOfItem = new Map();
    for (const ex of report.run.executions) lastOfItem.set(ex.item.id, ex);
    for (const ex of report.run.executions) {
      count.requests++;
      const request = paths.get(ex.item.id) || ex.item.name;
      if (ex.requestError) {
        count.sendErrors++;
        note(request, '(request error)', ex.requestError.message || ex.requestError.code || 'error');
      }
      if (lastOfItem.get(ex.item.id) !== ex) continue;
      for (const a of ex.assertions || []) {
        if (a.skipped) continue;
        count.assertions++;
        if (!a.error) count.passed++;
        else if (note(request, a.assertion, a.error.message)) count.excepted++;
        else count.failed++;
      }
    }
    console.log(`${name}: ${count.requests} requests (${count.sendErrors} could not be sent), ` +
                `${count.assertions} assertions: ${count.passed} passed, ${count.failed} failed, ` +
                `${count.excepted} excepted`);
  }
  for (const ex of exceptions.filter(e => !e.seen)) {
    unexpected++;
    console.log(`  STALE     [${ex.collection}] ${ex.request} :: ${ex.assertion} is listed as an exception but did not fail`);
  }
  process.exit(unexpected ? 1 : 0);
}

main();
