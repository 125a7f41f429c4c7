// The repository as the TypeScript compiler sees it: every tracked .ts file, the module graph
// (who imports whom, and whether only types cross the edge) and, per exported declaration, the
// files that use it. One program and one pass over every identifier, so `export *` chains,
// renamed imports and namespace imports (`plot.lineChart`) resolve to the declaration itself.
// Reference: knip's "unused exports" and dependency-cruiser's module graph, in a few lines of
// the compiler API this repository already depends on.
import ts from 'typescript';
import { execFileSync } from 'node:child_process';
import { join, relative } from 'node:path';

export interface Edge {
  from: string;
  to: string;
  typeOnly: boolean;
  line: number;
}
export interface ExportInfo {
  file: string;
  name: string;
  line: number;
  usedBy: Set<string>;
  usedInside: boolean;
  isPublic: boolean;
}
export interface RepoGraph {
  root: string;
  files: string[];
  edges: Edge[];
  exports: ExportInfo[];
}

export function trackedTs(root: string): string[] {
  return execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '*.ts'], {
    cwd: root,
    encoding: 'utf8',
  })
    .split('\n')
    .filter((f) => f && !f.endsWith('.d.ts'));
}

export function buildGraph(root: string, entries: readonly string[]): RepoGraph {
  const files = trackedTs(root);
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    allowImportingTsExtensions: true,
    noEmit: true,
    skipLibCheck: true,
    resolveJsonModule: true,
    strict: true,
    types: ['@webgpu/types', 'node'],
    lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
  };
  const program = ts.createProgram(
    files.map((f) => join(root, f)),
    options,
  );
  const checker = program.getTypeChecker();
  const rel = (sf: ts.SourceFile) => relative(root, sf.fileName);
  const ours = new Set(files);
  const sources = program.getSourceFiles().filter((sf) => ours.has(rel(sf)));

  const edges: Edge[] = [];
  for (const sf of sources) {
    const from = rel(sf);
    const add = (spec: ts.Expression, typeOnly: boolean, node: ts.Node) => {
      if (!ts.isStringLiteral(spec) || !spec.text.startsWith('.')) return;
      const r = ts.resolveModuleName(spec.text, sf.fileName, options, ts.sys).resolvedModule;
      if (!r) return;
      const to = relative(root, r.resolvedFileName);
      if (ours.has(to))
        edges.push({ from, to, typeOnly, line: sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1 });
    };
    const visit = (node: ts.Node): void => {
      if (ts.isImportDeclaration(node)) {
        const c = node.importClause;
        const typeOnly = Boolean(
          c &&
          (c.isTypeOnly ||
            (!c.name &&
              c.namedBindings &&
              ts.isNamedImports(c.namedBindings) &&
              c.namedBindings.elements.length > 0 &&
              c.namedBindings.elements.every((e) => e.isTypeOnly))),
        );
        add(node.moduleSpecifier, typeOnly, node);
      } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
        add(node.moduleSpecifier, node.isTypeOnly, node);
      } else if (
        ts.isCallExpression(node) &&
        node.expression.kind === ts.SyntaxKind.ImportKeyword &&
        node.arguments[0]
      ) {
        add(node.arguments[0], false, node);
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }

  // Exported declarations of every module, keyed by their declaration node.
  const exports: ExportInfo[] = [];
  const byDecl = new Map<ts.Declaration, ExportInfo>();
  for (const sf of sources) {
    const sym = checker.getSymbolAtLocation(sf);
    if (!sym) continue;
    for (const e of checker.getExportsOfModule(sym)) {
      const target = e.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(e) : e;
      const decl = target.declarations?.[0];
      if (!decl || decl.getSourceFile() !== sf) continue; // a re-export: counted at its home
      if (byDecl.has(decl)) continue;
      const info: ExportInfo = {
        file: rel(sf),
        name: e.name,
        line: sf.getLineAndCharacterOfPosition(decl.getStart(sf)).line + 1,
        usedBy: new Set(),
        usedInside: false,
        isPublic: false,
      };
      byDecl.set(decl, info);
      exports.push(info);
    }
  }

  // The public API: what the package entries export, namespaces (`export * as init`) included.
  const seen = new Set<ts.Symbol>();
  const publish = (mod: ts.Symbol): void => {
    for (const e of checker.getExportsOfModule(mod)) {
      const target = e.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(e) : e;
      if (seen.has(target)) continue;
      seen.add(target);
      const decl = target.declarations?.[0];
      if (decl && ts.isSourceFile(decl)) publish(target);
      else if (decl && byDecl.has(decl)) byDecl.get(decl)!.isPublic = true;
    }
  };
  for (const f of entries) {
    const sf = program.getSourceFile(join(root, f));
    const sym = sf && checker.getSymbolAtLocation(sf);
    if (sym) publish(sym);
  }

  // Every identifier that names an exported declaration marks it used by its file, except the
  // declaration's own name and the names in export lists (a re-export is not a use).
  for (const sf of sources) {
    const file = rel(sf);
    const visit = (node: ts.Node): void => {
      if (ts.isExportSpecifier(node) || ts.isExportDeclaration(node)) return;
      if (ts.isIdentifier(node)) {
        let sym = checker.getSymbolAtLocation(node);
        // `const { normal_ } = init`: the binding names a member of the namespace object.
        const be = node.parent;
        if (
          ts.isBindingElement(be) &&
          (be.propertyName ?? be.name) === node &&
          ts.isObjectBindingPattern(be.parent) &&
          ts.isVariableDeclaration(be.parent.parent) &&
          be.parent.parent.initializer
        ) {
          sym = checker.getTypeAtLocation(be.parent.parent.initializer).getProperty(node.text) ?? sym;
        }
        if (sym && sym.flags & ts.SymbolFlags.Alias) sym = checker.getAliasedSymbol(sym);
        const decl = sym?.declarations?.[0];
        const info = decl && byDecl.get(decl);
        if (info && (decl as ts.NamedDeclaration).name !== node) {
          const inImport = ts.findAncestor(node, (n) => ts.isImportDeclaration(n)) !== undefined;
          if (file !== info.file) {
            if (!inImport) info.usedBy.add(file);
          } else info.usedInside = true;
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return { root, files, edges, exports };
}
