/**
 * The VS Code extension: starts `portcullis lsp --stdio` for .pol files and hands it the policy
 * roots from the settings. Everything the editor shows comes from the language server, so the
 * extension stays this small and never disagrees with `portcullis check`.
 */
import { isAbsolute, join } from 'node:path';
import { type ExtensionContext, workspace } from 'vscode';
import { LanguageClient, type LanguageClientOptions, type ServerOptions } from 'vscode-languageclient/node';

let client: LanguageClient | undefined;

export async function activate(context: ExtensionContext): Promise<void> {
  const config = workspace.getConfiguration('portcullis');
  const [command = 'npx', ...args] = config.get<string[]>('command') ?? ['npx', '--no-install', 'portcullis'];
  const folder = workspace.workspaceFolders?.[0]?.uri.fsPath;
  const roots = (config.get<string[]>('policyRoots') ?? []).map((r) =>
    isAbsolute(r) || folder === undefined ? r : join(folder, r),
  );
  // An argv array, never a shell string: a setting cannot smuggle shell syntax into the command.
  const server: ServerOptions = { command, args: [...args, 'lsp', '--stdio'], options: { cwd: folder } };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: 'file', language: 'portcullis' }],
    initializationOptions: { policyRoots: roots },
    synchronize: { fileEvents: workspace.createFileSystemWatcher('**/*.pol') },
  };
  client = new LanguageClient('portcullis', 'Portcullis policy', server, clientOptions);
  context.subscriptions.push({ dispose: () => void client?.stop() });
  await client.start();
}

export async function deactivate(): Promise<void> {
  await client?.stop();
}
