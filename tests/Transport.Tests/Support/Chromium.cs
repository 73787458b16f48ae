namespace Transport.Tests;

/// <summary>Headless Chromium (Debian's chromium) loading a page as a browser user does, with a profile of its own.</summary>
internal static class Chromium
{
    /// <summary>The DOM Chromium built from <paramref name="url"/>; <paramref name="options"/> go before the URL.</summary>
    public static Task<(int ExitCode, byte[] Output, string Error)> DumpDomAsync(string url, string profileDirectory, params string[] options) =>
        Tool.RunAsync(Tool.RequireOnPath("chromium"),
        [
            // No sandbox (tests may run as root), no GPU, and none of the background traffic a fresh profile starts.
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir=" + profileDirectory,
            .. options, "--dump-dom", url,
        ]);
}
