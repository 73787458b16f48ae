using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Transport.Hosting.Internal.Tls;

/// <summary>Loads a server certificate as Kestrel's configuration describes one; failures name the key and the value.</summary>
internal static class CertificateLoader
{
    private const string ServerAuthentication = "1.3.6.1.5.5.7.3.1";

    /// <summary>Loads the certificate with its private key.</summary>
    /// <param name="options">Where it is.</param>
    /// <param name="key">Its configuration key, e.g. <c>Transport:Endpoints:secure:Tls:Certificate</c>.</param>
    /// <exception cref="InvalidDataException">It cannot be loaded, or it has no private key.</exception>
    public static X509Certificate2 Load(TransportCertificateOptions options, string key)
    {
        X509Certificate2 certificate = options.Path is not null ? LoadFile(options, key) : LoadFromStore(options, key);
        if (!certificate.HasPrivateKey)
        {
            certificate.Dispose();
            throw new InvalidDataException($"{key}: the certificate '{Describe(options)}' has no private key; a server needs one (give KeyPath for a PEM certificate).");
        }

        return certificate;
    }

    private static X509Certificate2 LoadFile(TransportCertificateOptions options, string key)
    {
        string path = options.Path!;
        try
        {
            if (options.KeyPath is not null)
            {
                return options.Password is null
                    ? X509Certificate2.CreateFromPemFile(path, options.KeyPath)
                    : X509Certificate2.CreateFromEncryptedPemFile(path, options.Password, options.KeyPath);
            }

            if (IsPem(path))
            {
                // The key in the same file as the certificate, as many tools write it.
                return options.Password is null
                    ? X509Certificate2.CreateFromPemFile(path)
                    : X509Certificate2.CreateFromEncryptedPemFile(path, options.Password);
            }

            return X509CertificateLoader.LoadPkcs12FromFile(path, options.Password);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
        {
            string keyPart = options.KeyPath is null ? "" : $" (KeyPath '{options.KeyPath}')";
            throw new InvalidDataException($"{key}:Path '{path}'{keyPart}: cannot load the certificate: {ex.Message}", ex);
        }
    }

    private static bool IsPem(string path)
    {
        Span<byte> start = stackalloc byte[64];
        using FileStream file = File.OpenRead(path);
        int read = file.ReadAtLeast(start, start.Length, throwOnEndOfStream: false);
        return start[..read].IndexOf("-----BEGIN "u8) >= 0;
    }

    private static X509Certificate2 LoadFromStore(TransportCertificateOptions options, string key)
    {
        if (!Enum.TryParse(options.Location ?? nameof(StoreLocation.CurrentUser), ignoreCase: true, out StoreLocation location)
            || !Enum.IsDefined(location))
        {
            throw new InvalidDataException($"{key}:Location '{options.Location}' is not a store location. Accepted: CurrentUser, LocalMachine.");
        }

        string storeName = options.Store ?? nameof(StoreName.My);
        try
        {
            using var store = new X509Store(storeName, location);
            store.Open(OpenFlags.ReadOnly | OpenFlags.OpenExistingOnly);
            X509Certificate2Collection found = store.Certificates.Find(X509FindType.FindBySubjectName, options.Subject!, validOnly: false);
            DateTime now = DateTime.Now;
            X509Certificate2? best = found
                .Where(c => c.HasPrivateKey)
                .Where(c => options.AllowInvalid == true || (c.NotBefore <= now && now <= c.NotAfter && AllowsServerAuthentication(c)))
                .OrderByDescending(c => c.NotAfter)
                .FirstOrDefault();
            foreach (X509Certificate2 other in found)
            {
                if (!ReferenceEquals(other, best))
                {
                    other.Dispose();
                }
            }

            return best ?? throw new InvalidDataException(
                $"{key}:Subject '{options.Subject}': no certificate with a private key{(options.AllowInvalid == true ? "" : ", valid now and usable for server authentication,")} in store {location}/{storeName}.");
        }
        catch (CryptographicException ex)
        {
            throw new InvalidDataException($"{key}:Store '{storeName}' ({location}): cannot open the store: {ex.Message}", ex);
        }
    }

    private static bool AllowsServerAuthentication(X509Certificate2 certificate)
    {
        foreach (X509Extension extension in certificate.Extensions)
        {
            if (extension is X509EnhancedKeyUsageExtension usage)
            {
                foreach (Oid oid in usage.EnhancedKeyUsages)
                {
                    if (oid.Value == ServerAuthentication)
                    {
                        return true;
                    }
                }

                return false;
            }
        }

        // No enhanced key usage extension: any use is allowed.
        return true;
    }

    private static string Describe(TransportCertificateOptions options) => options.Path ?? options.Subject ?? "";
}
