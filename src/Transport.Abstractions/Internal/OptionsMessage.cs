using System.Globalization;

namespace Transport.Internal;

/// <summary>
/// The one shape of every options failure: the full key, the value as configured, what is accepted, so that a bad
/// value and a value of the wrong type (<see cref="ConfigurationSchema"/>) read alike.
/// </summary>
internal static class OptionsMessage
{
    public static string Key(string path, string name) => path.Length == 0 ? name : path + ":" + name;

    public static string Invalid(string path, string name, long value, string rule) =>
        $"{Key(path, name)} is {value.ToString(CultureInfo.InvariantCulture)}; it {rule}.";

    public static string Invalid(string path, string name, TimeSpan value, string rule) =>
        $"{Key(path, name)} is {value.ToString("c", CultureInfo.InvariantCulture)}; it {rule}.";
}
