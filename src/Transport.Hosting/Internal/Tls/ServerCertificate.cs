using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;

namespace Transport.Hosting.Internal.Tls;

/// <summary>
/// An endpoint's server certificate and the handshake options built on it. A certificate from files is watched: when
/// the certificate or key file changes (written in place, renamed over, or swapped behind a symlink as Kubernetes secret
/// mounts do), it is loaded again and new handshakes use it; open connections are not touched. A file that does not load
/// is logged and the last good certificate kept.
/// </summary>
internal sealed class ServerCertificate : IDisposable
{
    // Editors and secret updaters write in several steps: one reload once the events stop.
    private static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(250);

    private readonly TlsSettings _settings;
    private readonly string _endpoint;
    private readonly ILogger _logger;
    private readonly List<FileSystemWatcher> _watchers = [];
    private readonly ITimer? _reload;
    private readonly Lock _reloading = new();
    private SslServerAuthenticationOptions _options;
    private X509Certificate2 _certificate;
    private byte[] _contentHash;

    public ServerCertificate(TlsSettings settings, string endpoint, ILogger logger, TimeProvider time)
    {
        _settings = settings;
        _endpoint = endpoint;
        _logger = logger;
        _contentHash = HashFiles();
        _certificate = Load();
        _options = settings.CreateServerOptions(_certificate);
        TlsLog.CertificateLoaded(logger, endpoint, _certificate.Subject, _certificate.Thumbprint, _certificate.NotAfter.ToUniversalTime());

        if (settings.Certificate.Path is { } path)
        {
            _reload = time.CreateTimer(static state => ((ServerCertificate)state!).Reload(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            foreach (string directory in new[] { path, settings.Certificate.KeyPath ?? path }.Select(DirectoryOf).Distinct(StringComparer.Ordinal))
            {
                Watch(directory);
            }
        }
    }

    /// <summary>When the certificate in use expires.</summary>
    public DateTime NotAfter => Volatile.Read(ref _certificate).NotAfter;

    /// <summary>The options of the next handshake.</summary>
    public SslServerAuthenticationOptions Options => Volatile.Read(ref _options);

    public void Dispose()
    {
        foreach (FileSystemWatcher watcher in _watchers)
        {
            watcher.Dispose();
        }

        _reload?.Dispose();
    }

    private void Watch(string directory)
    {
        try
        {
            WatchOrThrow(directory);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or PlatformNotSupportedException)
        {
            // Rotation is a convenience; serving is not: e.g. at the inotify instance limit the endpoint still starts.
            TlsLog.CertificateWatchFailed(_logger, _endpoint, directory, ex.Message);
        }
    }

    private void WatchOrThrow(string directory)
    {
        var watcher = new FileSystemWatcher(directory)
        {
            IncludeSubdirectories = false,
            NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.CreationTime,
        };
        watcher.Changed += OnChanged;
        watcher.Created += OnChanged;
        watcher.Deleted += OnChanged;
        watcher.Renamed += OnChanged;
        watcher.Error += (_, e) => TlsLog.CertificateWatchFailed(_logger, _endpoint, directory, e.GetException().Message);
        _watchers.Add(watcher);
        watcher.EnableRaisingEvents = true;
    }

    // Any change in the directory: a symlink swap renames an entry other than the certificate's own name.
    private void OnChanged(object sender, FileSystemEventArgs e) => _reload?.Change(Settle, Timeout.InfiniteTimeSpan);

    private void Reload()
    {
        // On a timer thread: nothing may escape.
        lock (_reloading)
        {
            try
            {
                byte[] hash = HashFiles();
                if (hash.AsSpan().SequenceEqual(_contentHash))
                {
                    return;
                }

                X509Certificate2 certificate = Load();
                SslServerAuthenticationOptions options = _settings.CreateServerOptions(certificate);
                _contentHash = hash;
                Volatile.Write(ref _certificate, certificate);
                Volatile.Write(ref _options, options);
                TlsLog.CertificateReloaded(_logger, _endpoint, certificate.Subject, certificate.Thumbprint, certificate.NotAfter.ToUniversalTime());
            }
            catch (Exception ex) when (ex is InvalidOperationException or IOException or UnauthorizedAccessException or CryptographicException)
            {
                TlsLog.CertificateReloadFailed(_logger, _endpoint, ex.Message, _certificate.Thumbprint);
            }
            catch (Exception ex)
            {
                TlsLog.CertificateReloadFaulted(_logger, _endpoint, _certificate.Thumbprint, ex);
            }
        }
    }

    private X509Certificate2 Load()
    {
        try
        {
            return CertificateLoader.Load(_settings.Certificate, _settings.CertificateKey);
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidOperationException(ex.Message, ex);
        }
    }

    /// <summary>The certificate and key files' contents, to tell a real change from a touch or an unrelated file.</summary>
    private byte[] HashFiles()
    {
        if (_settings.Certificate.Path is not { } path)
        {
            return [];
        }

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(ReadOrEmpty(path));
        if (_settings.Certificate.KeyPath is { } keyPath)
        {
            hash.AppendData(ReadOrEmpty(keyPath));
        }

        return hash.GetHashAndReset();
    }

    private static byte[] ReadOrEmpty(string path)
    {
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Mid-swap: the load that follows reports it if it lasts.
            return [];
        }
    }

    private static string DirectoryOf(string path) => Path.GetDirectoryName(Path.GetFullPath(path)) ?? "/";
}
